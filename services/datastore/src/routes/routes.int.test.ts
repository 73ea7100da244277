/**
 * What /ohlcv and /udf accept and how they refuse, over real HTTP on the app as the datastore
 * builds it, with the bar service replaced by a recorder: no storage is needed to check the
 * parameters, and the recorder shows which query reached it.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BarChunkCache } from '@candlestream/cache';
import type { Bar, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { HOUR_MS, MINUTE_MS, SimulatedClock, toIso } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import { Metrics } from '@candlestream/runtime';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { BarService } from '../bars.js';
import { createAuthenticator } from '../http/auth.js';
import { createRateLimiter } from '../http/rate-limit.js';
import type { LiveView } from '../live.js';
import type { SymbolRegistry } from '../symbols.js';

const NOW = Date.UTC(2026, 11, 1, 12, 0);
const MAX_BARS = 1_000;

interface Call {
  method: 'lastBars' | 'read';
  interval: Interval;
  from?: EpochMs;
  to: EpochMs;
  count?: number;
}

const calls: Call[] = [];

function bar(time: EpochMs): Bar {
  return { time, open: 1, high: 1, low: 1, close: 1, volume: 1 };
}

/** The real bar service over recording stand-ins for storage, the cache and the live view. */
const bars = new BarService({
  repository: {
    lastBars: (_s: MarketSymbol, interval: Interval, count: number, before: EpochMs) => {
      calls.push({ method: 'lastBars', interval, to: before, count });
      const times = Array.from({ length: count }, (_, i) => before - (count - i) * MINUTE_MS);
      return Promise.resolve(times.map(bar));
    },
  } as unknown as Repository,
  cache: {
    read: (_s: MarketSymbol, interval: Interval, from: EpochMs, to: EpochMs) => {
      calls.push({ method: 'read', interval, from, to });
      return Promise.resolve([]);
    },
  } as unknown as BarChunkCache,
  live: { current: () => Promise.resolve(undefined) } as unknown as LiveView,
  clock: new SimulatedClock(NOW),
  maxBars: MAX_BARS,
});

const symbols = {
  has: (symbol: MarketSymbol) => Promise.resolve(symbol === 'BTC-USD'),
  list: () => Promise.resolve(['BTC-USD' as MarketSymbol]),
} as unknown as SymbolRegistry;

let server: Server;
let base: string;

beforeAll(async () => {
  const app = createApp({
    bars,
    symbols,
    now: () => NOW,
    auth: createAuthenticator({ mode: 'off' }),
    limiter: createRateLimiter({ requestsPerMinute: 100_000 }),
    health: () => ({ status: 'ok', service: 'datastore', state: 'live.healthy', checks: {} }),
    metrics: new Metrics('datastore-routes-test'),
    logger: silentLogger(),
  });
  server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  calls.length = 0;
});

async function get(path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${base}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The message of a refusal, checked to be a 400 (a 500 would be the bug). */
async function refusal(path: string): Promise<string> {
  const { status, body } = await get(path);
  expect(status, path).toBe(400);
  return String(body['error'] ?? body['errmsg']);
}

describe('/ohlcv parameters', () => {
  it('limit without startDate gives the newest bars before endDate (it said startDate is required)', async () => {
    const { status, body } = await get('/ohlcv?symbol=BTC-USD&limit=3');
    expect(status).toBe(200);
    expect((body['bars'] as { time: string }[]).map((b) => b.time)).toEqual([
      toIso(NOW - 3 * MINUTE_MS),
      toIso(NOW - 2 * MINUTE_MS),
      toIso(NOW - MINUTE_MS),
    ]);
    expect(calls).toEqual([{ method: 'lastBars', interval: '1m', to: NOW, count: 3 }]);
    expect(await refusal('/ohlcv?symbol=BTC-USD')).toBe(
      'startDate is required unless limit is given (the newest limit bars)',
    );
  });

  it('takes TradingView resolutions as the interval, as the chart and UDF send them', async () => {
    const cases: [string, Interval][] = [
      ['1', '1m'],
      ['5', '5m'],
      ['15', '15m'],
      ['30', '30m'],
      ['60', '1h'],
      ['240', '4h'],
      ['1D', '1d'],
      ['D', '1d'],
      ['1W', '1w'],
      ['W', '1w'],
      ['1d', '1d'],
      ['4h', '4h'],
    ];
    for (const [given, interval] of cases) {
      const { status, body } = await get(`/ohlcv?symbol=BTC-USD&interval=${given}&limit=1`);
      expect(status, given).toBe(200);
      expect(body['interval'], given).toBe(interval);
    }
  });

  it('reads dates by one rule: ISO-8601, or epoch milliseconds of exactly 13 digits', async () => {
    const start = NOW - HOUR_MS;
    for (const startDate of [toIso(start), String(start), '2026-12-01T11:00:00+00:00']) {
      const { status } = await get(
        `/ohlcv?symbol=BTC-USD&startDate=${encodeURIComponent(startDate)}`,
      );
      expect(status, startDate).toBe(200);
      expect(calls.at(-1)?.from, startDate).toBe(start);
    }
    // Ten digits are epoch seconds, which were read as milliseconds: a moment in 1970.
    expect(await refusal('/ohlcv?symbol=BTC-USD&startDate=1796100000')).toBe(
      'startDate "1796100000" is not epoch milliseconds: those have 13 digits (for epoch seconds, append 000)',
    );
  });

  it('refuses dates outside 2009-01-03 .. 2100-01-01 with a 400 naming the parameter (they were 500s)', async () => {
    const cases: [string, RegExp][] = [
      ['startDate=9999999999999999', /^startDate "9999999999999999" is not epoch milliseconds/],
      ['startDate=8640000000000001', /^startDate "8640000000000001" is not epoch milliseconds/],
      [
        'startDate=-9999999999999999&endDate=-9999999999999998',
        /^startDate "-9999999999999999" is not epoch milliseconds/,
      ],
      [
        'startDate=2024-01-01T00:00:00Z&endDate=-9999999999999999',
        /^endDate "-9999999999999999" is not epoch milliseconds/,
      ],
      ['startDate=9999999999999', /^startDate "9999999999999" is outside 2009-01-03T00:00:00.000Z/],
      ['startDate=1000000000000', /^startDate "1000000000000" is outside/],
      ['startDate=0001-01-01', /^startDate "0001-01-01" is outside/],
      ['startDate=2024-01-01&endDate=2100-01-02', /^endDate "2100-01-02" is outside/],
      ['startDate=yesterday', /^startDate "yesterday" is not an ISO-8601 time/],
    ];
    for (const [query, message] of cases) {
      expect(await refusal(`/ohlcv?symbol=BTC-USD&${query}`)).toMatch(message);
    }
  });
});

describe('refusal messages name the parameter once', () => {
  it('interval', async () => {
    expect(await refusal('/ohlcv?symbol=BTC-USD&interval=2m&limit=1')).toBe(
      'interval "2m" is not one of 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w or a TradingView resolution (1, 5, 15, 30, 60, 240, 1D, 1W)',
    );
  });

  it('symbol', async () => {
    expect(await refusal('/ohlcv?symbol=%3F%3F%3F&limit=1')).toMatch(/^symbol "\?\?\?" /);
    expect(await refusal('/ohlcv?symbol=BTC-BTC&limit=1')).toBe(
      'symbol "BTC-BTC" has the same base and quote',
    );
  });

  it('resolution', async () => {
    expect(await refusal('/udf/history?symbol=BTC-USD&resolution=2&from=1&to=2')).toMatch(
      /^resolution "2" is not one of /,
    );
  });

  it('a UDF range too wide says to pass countback, which UDF has (not limit)', async () => {
    const from = Math.floor((NOW - 30 * 24 * HOUR_MS) / 1_000);
    const to = Math.floor(NOW / 1_000);
    const message = await refusal(`/udf/history?symbol=BTC-USD&resolution=1&from=${from}&to=${to}`);
    expect(message).toMatch(/narrow the range or pass countback\)$/);
  });
});
