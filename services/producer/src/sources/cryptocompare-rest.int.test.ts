import type { MarketSymbol, Tick } from '@candlestream/core';
import { AppError } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FakeCryptoCompare } from './cryptocompare-fake.js';
import { BEYOND_MINUTE_HISTORY_MESSAGE, startFakeCryptoCompare } from './cryptocompare-fake.js';
import type { CandleRangeRequest, CcCandle, CcMinuteCandle } from './cryptocompare-rest.js';
import {
  candleToTrades,
  createCryptoCompareHistorySource,
  fetchCandles,
  fetchMinuteCandles,
} from './cryptocompare-rest.js';

const BTC_USD = 'BTC-USD' as MarketSymbol;
const API_KEY = 'test-api-key';
/** 2024-01-01T00:00:00Z. */
const BASE_SEC = Date.UTC(2024, 0, 1) / 1000;
const MINUTE_MS = 60_000;
const FAST_RETRY = { backoff: { initialDelayMs: 1, maxDelayMs: 1, jitter: 0 } };
const ZERO_ROW = { open: 0, high: 0, low: 0, close: 0, volumefrom: 0, volumeto: 0 };

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
  extra: Partial<CandleRangeRequest> = {},
): CandleRangeRequest {
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
    const { candles, unavailable } = await fetchMinuteCandles(request(100, 4_600));
    expect(candles).toEqual(series(100, 4_600));
    expect(unavailable).toEqual([]);

    const asked = fake.restRequests.map((r) => [Number(r.query['toTs']), Number(r.query['limit'])]);
    // 4,500 minutes: 2,001 + 2,001 + 498, newest first, each toTs one minute before the last page.
    const newest = BASE_SEC + 4_599 * 60;
    expect(asked).toEqual([
      [newest, 2_000],
      [newest - 2_001 * 60, 2_000],
      [newest - 4_002 * 60, 497],
    ]);
    for (const r of fake.restRequests) {
      expect(r.path).toBe('/data/v2/histominute');
      expect(r.query).toMatchObject({ fsym: 'BTC', tsym: 'USD', e: 'Kraken' });
      expect(r.authorization).toBe(`Apikey ${API_KEY}`);
    }
  });

  it('stops paging at the all-zero minutes before the listing', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(3_000, 3_100));
    const { candles, unavailable } = await fetchMinuteCandles(request(0, 3_100, { pageLimit: 50 }));
    expect(candles).toEqual(series(3_000, 3_100));
    expect(unavailable).toEqual([]);
    // Pages of 51: the second reaches the listing (two zero minutes, then trading), so a third
    // is asked; wholly without trading, it is the start of the series and ends the paging.
    expect(fake.restRequests).toHaveLength(3);
    expect(Number(fake.restRequests.at(-1)!.query['toTs'])).toBe(BASE_SEC + (3_099 - 102) * 60);
  });

  it('does not stop at an all-zero minute mid-series (27 of 60 minutes came back)', async () => {
    // Issue 15's capture: one minute without trading, sent as all zeros, in the middle of the hour.
    const withGap = series(0, 60).map((c, k) => (k === 33 ? { ...c, ...ZERO_ROW } : c));
    fake.setMinutes('Kraken', 'BTC', 'USD', withGap);
    const expected = withGap.filter((_, k) => k !== 33);

    const onePage = await fetchMinuteCandles(request(0, 60));
    expect(onePage).toEqual({ candles: expected, unavailable: [] });

    // Across pages too, with a zero minute as the oldest row of a page.
    fake.setMinutes(
      'Kraken',
      'BTC',
      'USD',
      withGap.map((c, k) => (k === 39 ? { ...c, ...ZERO_ROW } : c)),
    );
    const paged = await fetchMinuteCandles(request(0, 60, { pageLimit: 19 }));
    expect(paged.candles.map((c) => (c.time - BASE_SEC) / 60)).toEqual(
      [...Array(60).keys()].filter((k) => k !== 33 && k !== 39),
    );
    expect(paged.unavailable).toEqual([]);
  });

  it('keeps the pages fetched before the 7-day limit and reports the minutes beyond it', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 3_000));
    fake.setMinuteHistoryStart(BASE_SEC + 1_000 * 60);
    const { candles, unavailable } = await fetchMinuteCandles(
      request(0, 3_000, { pageLimit: 500 }),
    );
    expect(candles).toEqual(series(1_000, 3_000));
    expect(unavailable).toHaveLength(1);
    const [gap] = unavailable;
    expect([gap!.fromMs, gap!.toMs]).toEqual([BASE_SEC * 1000, (BASE_SEC + 1_000 * 60) * 1000]);
    expect(gap!.error).toBeInstanceOf(AppError);
    expect(gap!.error).toMatchObject({
      code: 'NOT_FOUND',
      retriable: false,
      details: { beyondHistory: true, upstreamMessage: BEYOND_MINUTE_HISTORY_MESSAGE },
    });
    // The refusal is not retried: asking again cannot help.
    expect(fake.restRequests).toHaveLength(5);
  });

  it('keeps the pages fetched before a page that keeps failing, and reports the rest', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 20));
    let calls = 0;
    const fetchThenRateLimited: typeof fetch = async (url, init) => {
      const answer = await fetch(url, init);
      if (++calls === 1) fake.failNextRest('rate-limit', 10);
      return answer;
    };
    const { candles, unavailable } = await fetchMinuteCandles(
      request(0, 20, {
        pageLimit: 5,
        fetch: fetchThenRateLimited,
        retry: { ...FAST_RETRY, maxAttempts: 3 },
      }),
    );
    expect(candles).toEqual(series(14, 20));
    expect(unavailable).toHaveLength(1);
    expect(unavailable[0]).toMatchObject({
      fromMs: BASE_SEC * 1000,
      toMs: (BASE_SEC + 14 * 60) * 1000,
      error: { code: 'RATE_LIMITED', retriable: true },
    });
    expect(fake.restRequests).toHaveLength(1 + 3);
  });

  it("asks with tryConversion=false, so rows converted through another pair are not the pair's", async () => {
    // Kraken does not list XYZ-USD; the API would derive it through BTC unless told not to.
    fake.setConvertedMinutes('Kraken', 'XYZ', 'USD', 'BTC', series(0, 10));
    const { candles, unavailable } = await fetchMinuteCandles(
      request(0, 10, { symbol: 'XYZ-USD' as MarketSymbol }),
    );
    expect(candles).toEqual([]);
    expect(unavailable).toMatchObject([{ error: { code: 'INVALID_ARGUMENT', retriable: false } }]);
    expect(fake.restRequests.map((r) => r.query['tryConversion'])).toEqual(['false']);
  });

  it('keeps quiet minutes as candles without volume (they make no trades)', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', [minute(0), minute(3)]);
    const { candles } = await fetchMinuteCandles(request(0, 4));
    expect(candles.map((c) => [c.time - BASE_SEC, c.volumefrom, c.close])).toEqual([
      [0, minute(0).volumefrom, minute(0).close],
      [60, 0, minute(0).close],
      [120, 0, minute(0).close],
      [180, minute(3).volumefrom, minute(3).close],
    ]);
    expect(candles.flatMap((c) => candleToTrades(BTC_USD, c, 'Kraken'))).toHaveLength(8);
  });

  it("retries HTTP 429 with the vendor's rate-limit body, then succeeds", async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('rate-limit', 2);
    expect(await fetchMinuteCandles(request(0, 10))).toEqual({
      candles: series(0, 10),
      unavailable: [],
    });
    expect(fake.restRequests).toHaveLength(3);
  });

  it('retries a rate limit answered with HTTP 200, then succeeds', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('rate-limit-in-body', 2);
    expect((await fetchMinuteCandles(request(0, 10))).candles).toEqual(series(0, 10));
    expect(fake.restRequests).toHaveLength(3);
  });

  it('retries HTTP 5xx', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('http-500', 1);
    expect((await fetchMinuteCandles(request(0, 10))).candles).toEqual(series(0, 10));
    expect(fake.restRequests).toHaveLength(2);
  });

  it('gives up after maxAttempts on a lasting rate limit, reporting the range as retriable', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('rate-limit', 10);
    const result = await fetchMinuteCandles(
      request(0, 10, { retry: { ...FAST_RETRY, maxAttempts: 3 } }),
    );
    expect(result).toMatchObject({
      candles: [],
      unavailable: [
        {
          fromMs: BASE_SEC * 1000,
          toMs: (BASE_SEC + 10 * 60) * 1000,
          error: { code: 'RATE_LIMITED', retriable: true },
        },
      ],
    });
    expect(fake.restRequests).toHaveLength(3);
  });

  it('reports a bad shape as MALFORMED_MESSAGE without retrying', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    fake.failNextRest('bad-shape', 1);
    const { unavailable } = await fetchMinuteCandles(request(0, 10));
    expect(unavailable).toMatchObject([{ error: { code: 'MALFORMED_MESSAGE', retriable: false } }]);
    expect(fake.restRequests).toHaveLength(1);
  });

  it('reports a wrong API key as UNAUTHENTICATED without retrying', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    const { unavailable } = await fetchMinuteCandles(request(0, 10, { apiKey: 'nope' }));
    expect(unavailable).toMatchObject([{ error: { code: 'UNAUTHENTICATED', retriable: false } }]);
    expect(fake.restRequests).toHaveLength(1);
  });

  it('reports an unreachable server as UNAVAILABLE', async () => {
    await fake.close();
    const { unavailable } = await fetchMinuteCandles(
      request(0, 10, { retry: { ...FAST_RETRY, maxAttempts: 2 } }),
    );
    expect(unavailable).toMatchObject([{ error: { code: 'UNAVAILABLE', retriable: true } }]);
  });

  it('rejects when cancelled', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', series(0, 10));
    const controller = new AbortController();
    controller.abort();
    await expect(
      fetchMinuteCandles(request(0, 10, { signal: controller.signal })),
    ).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});

describe('fetchCandles at hour and day resolution', () => {
  const HOUR_SEC = 3_600;
  const DAY_SEC = 86_400;
  const bar = (timeSec: number, k: number): CcCandle => ({ ...minute(k), time: timeSec });

  it('reads a month of 1h bars from histohour, skipping hours without trading', async () => {
    const hours = [...Array(31 * 24).keys()].map((k) => bar(BASE_SEC + k * HOUR_SEC, k));
    const quiet = hours.map((c, k) => (k === 100 ? { ...c, ...ZERO_ROW } : c));
    fake.setCandles('hour', 'Kraken', 'BTC', 'USD', quiet);
    const { candles, unavailable } = await fetchCandles(
      request(0, 0, {
        resolution: 'hour',
        fromMs: BASE_SEC * 1000,
        toMs: (BASE_SEC + 31 * 24 * HOUR_SEC) * 1000,
        pageLimit: 300,
      }),
    );
    expect(candles).toEqual(hours.filter((_, k) => k !== 100));
    expect(unavailable).toEqual([]);
    expect(new Set(fake.restRequests.map((r) => r.path))).toEqual(new Set(['/data/v2/histohour']));
    expect(fake.restRequests.map((r) => Number(r.query['limit']))).toEqual([300, 300, 141]);
  });

  it('reads a year of 1d bars from histoday, stopping at the first trade', async () => {
    // Listed 300 days into the year: the days before are all zeros, a whole page of them ends it.
    const days = [...Array(65).keys()].map((k) => bar(BASE_SEC + (300 + k) * DAY_SEC, k));
    fake.setCandles('day', 'Kraken', 'BTC', 'USD', days);
    const { candles, unavailable } = await fetchCandles(
      request(0, 0, {
        resolution: 'day',
        // Not on day boundaries: the partial days at both ends are left out.
        fromMs: BASE_SEC * 1000 - 1,
        toMs: (BASE_SEC + 365 * DAY_SEC) * 1000 + 5,
        pageLimit: 50,
      }),
    );
    expect(candles).toEqual(days);
    expect(unavailable).toEqual([]);
    expect(fake.restRequests.every((r) => r.path === '/data/v2/histoday')).toBe(true);
    expect(fake.restRequests.every((r) => r.query['tryConversion'] === 'false')).toBe(true);
    // 365 whole days, pages of 51 newest first: the second holds the listing, the third is all
    // zeros and ends the paging.
    expect(fake.restRequests).toHaveLength(3);
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

  it('yields what was fetched, then ends with a non-retriable error naming what it could not provide', async () => {
    fake.setMinutes('Coinbase', 'BTC', 'USD', series(0, 3_000));
    fake.setMinuteHistoryStart(BASE_SEC + 1_000 * 60);
    const source = createCryptoCompareHistorySource({
      apiKey: API_KEY,
      symbols: [BTC_USD],
      from: BASE_SEC * 1000,
      to: (BASE_SEC + 3_000 * 60) * 1000,
      restUrl: fake.restUrl,
      logger: silentLogger(),
      retry: FAST_RETRY,
    });
    const ticks: Tick[] = [];
    let failure: unknown;
    try {
      for await (const t of source.trades({ signal: new AbortController().signal })) ticks.push(t);
    } catch (err) {
      failure = err;
    }
    expect(ticks).toEqual(series(1_000, 3_000).flatMap((c) => candleToTrades(BTC_USD, c)));
    expect(failure).toBeInstanceOf(AppError);
    expect(failure).toMatchObject({
      code: 'NOT_FOUND',
      retriable: false,
      details: {
        unavailable: [
          {
            symbol: 'BTC-USD',
            from: '2024-01-01T00:00:00.000Z',
            to: '2024-01-01T16:40:00.000Z',
            code: 'NOT_FOUND',
            retriable: false,
          },
        ],
      },
    });
    expect((failure as AppError).message).toContain(
      'could not provide BTC-USD 2024-01-01T00:00:00.000Z..2024-01-01T16:40:00.000Z',
    );
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
