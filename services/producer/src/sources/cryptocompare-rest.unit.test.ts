import type { MarketSymbol } from '@candlestream/core';
import { AppError, SimulatedClock, aggregateTicks, tickSchema } from '@candlestream/core';
import { seededRandom } from '@candlestream/core/testing';
import { describe, expect, it } from 'vitest';
import type { CcMinuteCandle } from './cryptocompare-rest.js';
import { candleToTrades, parseHistominuteResponse, withRetries } from './cryptocompare-rest.js';

const BTC_USD = 'BTC-USD' as MarketSymbol;
const MINUTE_SEC = 1_700_000_040; // a whole minute, epoch seconds

function candle(fields: Partial<CcMinuteCandle>): CcMinuteCandle {
  return {
    time: MINUTE_SEC,
    open: 100,
    high: 110,
    low: 90,
    close: 105,
    volumefrom: 3,
    volumeto: 300,
    ...fields,
  };
}

function randomCandle(random: () => number, time: number): CcMinuteCandle {
  const pick = (): number => Math.round((1_000 + random() * 100) * 1e4) / 1e4;
  const prices = [pick(), pick(), pick(), pick()].sort((a, b) => a - b);
  const low = prices[0]!;
  let [a, b, high] = [prices[1]!, prices[2]!, prices[3]!];
  // Make the degenerate shapes common: open or close on an extreme, flat minutes.
  const shape = random();
  if (shape < 0.1) a = low;
  else if (shape < 0.2) b = high;
  else if (shape < 0.25) [a, b, high] = [low, low, low];
  else if (shape < 0.3) b = a;
  const [open, close] = random() < 0.5 ? [a, b] : [b, a];
  const magnitude = [1e-12, 1e-8, 0.1, 1, 1_234.5678, 1e9][Math.floor(random() * 6)]!;
  const volumefrom = magnitude * (0.1 + random());
  return { time, open, high, low, close, volumefrom, volumeto: volumefrom * close };
}

describe('candleToTrades', () => {
  it('places open, low, high, close inside the minute (up candle)', () => {
    const trades = candleToTrades(BTC_USD, candle({}), 'Coinbase');
    expect(trades.map((t) => [t.ts - MINUTE_SEC * 1000, t.price, t.size])).toEqual([
      [0, 100, 1.5],
      [15_000, 90, 0.75],
      [30_000, 110, 0.375],
      [45_000, 105, 0.375],
    ]);
    expect(trades.map((t) => t.id)).toEqual(
      [0, 1, 2, 3].map((k) => `cc-hist:Coinbase:${MINUTE_SEC}:${k}`),
    );
    for (const t of trades) {
      expect(t).toMatchObject({ v: 1, symbol: 'BTC-USD', side: 'unknown', source: 'backfill' });
      expect(tickSchema.validate(t).error).toBeUndefined();
    }
  });

  it('visits the high first on a down candle', () => {
    const trades = candleToTrades(BTC_USD, candle({ open: 105, close: 100 }));
    expect(trades.map((t) => t.price)).toEqual([105, 110, 90, 100]);
  });

  it('does not repeat prices already present', () => {
    expect(candleToTrades(BTC_USD, candle({ open: 90, close: 110 })).map((t) => t.price)).toEqual([
      90, 110,
    ]);
    const flat = candleToTrades(
      BTC_USD,
      candle({ open: 7, high: 7, low: 7, close: 7, volumefrom: 2 }),
    );
    expect(flat.map((t) => [t.price, t.size])).toEqual([[7, 2]]);
  });

  it('makes no trades of a minute without volume', () => {
    expect(candleToTrades(BTC_USD, candle({ volumefrom: 0, volumeto: 0 }))).toEqual([]);
  });

  it('is deterministic', () => {
    const c = candle({ volumefrom: 0.1 + 0.2 });
    expect(candleToTrades(BTC_USD, c)).toEqual(candleToTrades(BTC_USD, { ...c }));
  });

  it('aggregates back to the candle for many random candles', () => {
    const random = seededRandom(20240101);
    for (let i = 0; i < 2_000; i++) {
      const c = randomCandle(random, MINUTE_SEC + i * 60);
      const trades = candleToTrades(BTC_USD, c, 'Kraken');
      expect(trades.length).toBeGreaterThanOrEqual(1);
      expect(trades.length).toBeLessThanOrEqual(4);
      expect(trades[0]!.price).toBe(c.open);
      expect(trades.at(-1)!.price).toBe(c.close);
      for (const t of trades) {
        expect(t.size).toBeGreaterThan(0);
        expect(t.ts).toBeGreaterThanOrEqual(c.time * 1000);
        expect(t.ts).toBeLessThan(c.time * 1000 + 60_000);
      }
      const bars = aggregateTicks(trades, '1m').get(BTC_USD);
      expect(bars).toHaveLength(1);
      const bar = bars![0]!;
      expect([bar.time, bar.open, bar.high, bar.low, bar.close]).toEqual([
        c.time * 1000,
        c.open,
        c.high,
        c.low,
        c.close,
      ]);
      expect(Math.abs(bar.volume - c.volumefrom) / c.volumefrom).toBeLessThanOrEqual(1e-9);
    }
  });

  it('keeps tiny volumes positive and exact', () => {
    for (const volumefrom of [Number.MIN_VALUE * 8, 1e-300, 3e-12]) {
      const trades = candleToTrades(BTC_USD, candle({ volumefrom }));
      expect(trades).toHaveLength(4);
      const bar = aggregateTicks(trades, '1m').get(BTC_USD)![0]!;
      expect(bar.volume).toBe(volumefrom);
    }
  });
});

function errorOf(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected an AppError');
}

describe('parseHistominuteResponse', () => {
  const success = (rows: unknown): string =>
    JSON.stringify({ Response: 'Success', Data: { Aggregated: false, Data: rows } });

  it('returns the candles, ascending', () => {
    const rows = [candle({ time: MINUTE_SEC + 60 }), candle({})].map((c) => ({
      ...c,
      conversionType: 'direct',
      conversionSymbol: '',
    }));
    expect(parseHistominuteResponse(200, success(rows))).toEqual([
      candle({}),
      candle({ time: MINUTE_SEC + 60 }),
    ]);
  });

  it.each([
    [
      200,
      '{"Response":"Error","Message":"You are over your rate limit please upgrade your account!","Type":99,"RateLimit":{},"Data":{}}',
      'RATE_LIMITED',
      true,
    ],
    [
      200,
      '{"Response":"Error","Message":"You need a valid auth key or api key to access this endpoint","Type":1}',
      'UNAUTHENTICATED',
      false,
    ],
    [
      200,
      '{"Response":"Error","Message":"cccagg_or_exchange_market_does_not_exist","Type":2}',
      'INVALID_ARGUMENT',
      false,
    ],
    [502, 'Bad Gateway', 'UNAVAILABLE', true],
    [429, '', 'RATE_LIMITED', true],
    [401, '', 'UNAUTHENTICATED', false],
    [404, '', 'INVALID_ARGUMENT', false],
    [200, '<html>', 'MALFORMED_MESSAGE', false],
    [200, '{"Response":"Success","Data":{"Data":{}}}', 'MALFORMED_MESSAGE', false],
    [200, '{"Data":{"Data":[]}}', 'MALFORMED_MESSAGE', false],
    [200, success([{ ...candle({}), close: 'x' }]), 'MALFORMED_MESSAGE', false],
    [200, success([{ ...candle({}), time: 1.5 }]), 'MALFORMED_MESSAGE', false],
  ])('HTTP %i %s → %s (retriable %s)', (status, body, code, retriable) => {
    const err = errorOf(() => parseHistominuteResponse(status, body));
    expect([err.code, err.retriable]).toEqual([code, retriable]);
  });

  it('reads HTTP 429 with the rate-limit body as RATE_LIMITED, with its message', () => {
    const body =
      '{"Response":"Error","Message":"You are over your rate limit please upgrade your account!","Type":99}';
    const err = errorOf(() => parseHistominuteResponse(429, body));
    expect([err.code, err.retriable]).toEqual(['RATE_LIMITED', true]);
    expect(err.message).toContain('over your rate limit');
  });

  it('reads the refusal of minutes beyond the history kept as NOT_FOUND, not retriable', () => {
    const body = JSON.stringify({
      Response: 'Error',
      Message: 'Minute data for BTC-USD is only available for the last 7 days.',
      Type: 2,
    });
    const err = errorOf(() => parseHistominuteResponse(200, body));
    expect([err.code, err.retriable, err.details?.['beyondHistory']]).toEqual([
      'NOT_FOUND',
      false,
      true,
    ]);
  });

  it('reads the refusal of hours beyond the history kept the same way', () => {
    const body = JSON.stringify({
      Response: 'Error',
      Message:
        'histohour data is only available for the last 2000 days; use histoday for older data',
      Type: 2,
    });
    const err = errorOf(() => parseHistominuteResponse(200, body, 'histohour'));
    expect([err.code, err.retriable, err.details?.['beyondHistory']]).toEqual([
      'NOT_FOUND',
      false,
      true,
    ]);
  });

  it('names the endpoint it parsed for', () => {
    expect(errorOf(() => parseHistominuteResponse(502, '', 'histoday')).message).toBe(
      'histoday answered HTTP 502',
    );
  });
});

describe('withRetries', () => {
  const fast = { backoff: { initialDelayMs: 1, maxDelayMs: 1, jitter: 0 } };

  it('retries retriable errors, then returns the success', async () => {
    let calls = 0;
    const clock = new SimulatedClock();
    const result = await clock.runUntil(
      withRetries(
        'op',
        () => {
          calls++;
          if (calls < 3) return Promise.reject(new AppError('RATE_LIMITED', 'slow down'));
          return Promise.resolve('ok');
        },
        { ...fast, clock },
      ),
    );
    expect([result, calls]).toEqual(['ok', 3]);
  });

  it('stops at maxAttempts and throws the last error', async () => {
    let calls = 0;
    const clock = new SimulatedClock();
    const run = withRetries(
      'op',
      () => {
        calls++;
        return Promise.reject(new AppError('UNAVAILABLE', `down ${calls}`));
      },
      { ...fast, maxAttempts: 4, clock },
    );
    await expect(clock.runUntil(run)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: 'down 4',
    });
    expect(calls).toBe(4);
  });

  it('does not retry a non-retriable error', async () => {
    let calls = 0;
    const run = withRetries('op', () => {
      calls++;
      return Promise.reject(new AppError('MALFORMED_MESSAGE', 'bad'));
    });
    await expect(run).rejects.toMatchObject({ code: 'MALFORMED_MESSAGE' });
    expect(calls).toBe(1);
  });
});
