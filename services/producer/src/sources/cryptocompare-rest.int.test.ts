import type { MarketSymbol, Tick } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FakeCryptoCompare } from './cryptocompare-fake.js';
import { startFakeCryptoCompare } from './cryptocompare-fake.js';
import type { CcMinuteCandle, MinuteRangeRequest } from './cryptocompare-rest.js';
import {
  candleToTrades,
  createCryptoCompareHistorySource,
  fetchMinuteCandles,
} from './cryptocompare-rest.js';

const BTC_USD = 'BTC-USD' as MarketSymbol;
const API_KEY = 'test-api-key';
/** 2024-01-01T00:00:00Z. */
const BASE_SEC = Date.UTC(2024, 0, 1) / 1000;
const MINUTE_MS = 60_000;
const FAST_RETRY = { backoff: { initialDelayMs: 1, maxDelayMs: 1, jitter: 0 } };

let fake: FakeCryptoCompare;

beforeEach(async () => {
  fake = await startFakeCryptoCompare({ apiKey: API_KEY });
});

afterEach(async () => {
  await fake.close();
});

/** A minute with trades: prices wander with k, volume never 0. */
function minute(k: number): CcMinuteCandle {
  const open = 40_000 + (k % 97);
  return {
    time: BASE_SEC + k * 60,
    open,
    high: open + 5,
    low: open - 4,
    close: open + (k % 2 === 0 ? 1 : -1),
    volumefrom: 0.5 + (k % 13) / 10,
    volumeto: 1,
  };
}

function series(fromK: number, toK: number): CcMinuteCandle[] {
  const out: CcMinuteCandle[] = [];
  for (let k = fromK; k < toK; k++) out.push(minute(k));
  return out;
}

function request(
  fromK: number,
  toK: number,
  extra: Partial<MinuteRangeRequest> = {},
): MinuteRangeRequest {
  return {
    restUrl: fake.restUrl,
    apiKey: API_KEY,
    symbol: BTC_USD,
    exchange: 'Kraken',
    fromMs: (BASE_SEC + fromK * 60) * 1000,
    toMs: (BASE_SEC + toK * 60) * 1000,
    retry: FAST_RETRY,
    ...extra,
  };
}

describe('fetchMinuteCandles', () => {
  it('pages backwards with toTs across several pages and returns the range ascending', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 5_000));
    const candles = await fetchMinuteCandles(request(100, 4_600));
    expect(candles).toEqual(series(100, 4_600));

    const asked = fake.restRequests.map((r) => [Number(r.query['toTs']), Number(r.query['limit'])]);
    // 4,500 minutes: 2,001 + 2,001 + 498, newest first, each toTs one minute before the last page.
    const newest = BASE_SEC + 4_599 * 60;
    expect(asked).toEqual([
      [newest, 2_000],
      [newest - 2_001 * 60, 2_000],
      [newest - 4_002 * 60, 497],
    ]);
    for (const r of fake.restRequests) {
      expect(r.query).toMatchObject({ fsym: 'BTC', tsym: 'USD', e: 'Kraken' });
      expect(r.authorization).toBe(`Apikey ${API_KEY}`);
    }
  });

  it('stops paging at the all-zero minutes before the listing', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(3_000, 3_100));
    const candles = await fetchMinuteCandles(request(0, 3_100, { pageLimit: 50 }));
    expect(candles).toEqual(series(3_000, 3_100));
    // Pages of 51 reach the listing on the second call, which holds zeros: no third call.
    expect(fake.restRequests).toHaveLength(2);
    expect(Number(fake.restRequests.at(-1)!.query['toTs'])).toBe(BASE_SEC + (3_099 - 51) * 60);
  });

  it('keeps quiet minutes as candles without volume (they make no trades)', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', [minute(0), minute(3)]);
    const candles = await fetchMinuteCandles(request(0, 4));
    expect(candles.map((c) => [c.time - BASE_SEC, c.volumefrom, c.close])).toEqual([
      [0, minute(0).volumefrom, minute(0).close],
      [60, 0, minute(0).close],
      [120, 0, minute(0).close],
      [180, minute(3).volumefrom, minute(3).close],
    ]);
    expect(candles.flatMap((c) => candleToTrades(BTC_USD, c, 'Kraken'))).toHaveLength(8);
  });

  it('retries a rate limit answered with HTTP 200, then succeeds', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('rate-limit', 2);
    expect(await fetchMinuteCandles(request(0, 10))).toEqual(series(0, 10));
    expect(fake.restRequests).toHaveLength(3);
  });

  it('retries HTTP 5xx', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('http-500', 1);
    expect(await fetchMinuteCandles(request(0, 10))).toEqual(series(0, 10));
    expect(fake.restRequests).toHaveLength(2);
  });

  it('gives up after maxAttempts on a lasting rate limit', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('rate-limit', 10);
    const run = fetchMinuteCandles(request(0, 10, { retry: { ...FAST_RETRY, maxAttempts: 3 } }));
    await expect(run).rejects.toMatchObject({ code: 'RATE_LIMITED', retriable: true });
    expect(fake.restRequests).toHaveLength(3);
  });

  it('refuses a bad shape as MALFORMED_MESSAGE without retrying', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('bad-shape', 1);
    await expect(fetchMinuteCandles(request(0, 10))).rejects.toMatchObject({
      code: 'MALFORMED_MESSAGE',
      retriable: false,
    });
    expect(fake.restRequests).toHaveLength(1);
  });

  it('refuses a wrong API key as UNAUTHENTICATED without retrying', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    await expect(fetchMinuteCandles(request(0, 10, { apiKey: 'nope' }))).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      retriable: false,
    });
    expect(fake.restRequests).toHaveLength(1);
  });

  it('reports an unreachable server as UNAVAILABLE', async () => {
    await fake.close();
    const run = fetchMinuteCandles(request(0, 10, { retry: { ...FAST_RETRY, maxAttempts: 2 } }));
    await expect(run).rejects.toMatchObject({ code: 'UNAVAILABLE', retriable: true });
  });
});

describe('CryptoCompare history source', () => {
  it('yields the trades of every whole minute in [from, to), ascending per symbol', async () => {
    const ETH_USD = 'ETH-USD' as MarketSymbol;
    fake.setMinutes('Coinbase', 'BTC', 'USD', series(0, 3_000));
    fake.setMinutes('Coinbase', 'ETH', 'USD', series(0, 3_000));
    const source = createCryptoCompareHistorySource({
      apiKey: API_KEY,
      symbols: [BTC_USD, ETH_USD],
      // Not minute-aligned: the partial minutes at both ends are left out.
      from: (BASE_SEC + 10 * 60) * 1000 - 1,
      to: (BASE_SEC + 2_510 * 60) * 1000 + 30_000,
      restUrl: fake.restUrl,
      logger: silentLogger(),
      retry: FAST_RETRY,
    });
    expect(source.kind).toBe('cryptocompare-history');
    const ticks: Tick[] = [];
    for await (const t of source.trades({ signal: new AbortController().signal })) ticks.push(t);

    const expected = [BTC_USD, ETH_USD].flatMap((symbol) =>
      series(10, 2_510).flatMap((c) => candleToTrades(symbol, c, 'Coinbase')),
    );
    expect(ticks).toEqual(expected);
    for (const symbol of [BTC_USD, ETH_USD]) {
      const times = ticks.filter((t) => t.symbol === symbol).map((t) => t.ts);
      expect(times).toEqual([...times].sort((a, b) => a - b));
    }
    expect(ticks[0]!.ts).toBe((BASE_SEC + 10 * 60) * 1000);
    expect(ticks.at(-1)!.ts).toBeLessThan((BASE_SEC + 2_510 * 60) * 1000);
    expect(ticks.every((t) => t.source === 'backfill')).toBe(true);
    expect(fake.restRequests).toHaveLength(4);
  });

  it('ends quietly when aborted', async () => {
    fake.setMinutes('Coinbase', 'BTC', 'USD', series(0, 100));
    const source = createCryptoCompareHistorySource({
      apiKey: API_KEY,
      symbols: [BTC_USD],
      from: BASE_SEC * 1000,
      to: (BASE_SEC + 100 * 60) * 1000,
      restUrl: fake.restUrl,
      logger: silentLogger(),
    });
    const controller = new AbortController();
    const ticks: Tick[] = [];
    for await (const t of source.trades({ signal: controller.signal })) {
      ticks.push(t);
      if (ticks.length === 5) controller.abort();
    }
    expect(ticks).toHaveLength(5);
    expect(ticks[0]!.ts).toBe(BASE_SEC * 1000 + 0 * MINUTE_MS);
  });
});
