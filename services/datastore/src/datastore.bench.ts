/**
 * The datastore under HTTP load, beside a baseline measured in the same run: a plain express
 * handler doing one direct query (bench/plain-server.ts). Each server is its own process; the load
 * generator here keeps CONCURRENCY requests in flight for LOAD_MS and reports requests/s, p50, p99.
 * - 1 day of 1m bars (a closed day): from the Redis chunk cache, and with no cache (database);
 * - 1 year of 1h bars (cached);
 * - the same two queries through the plain handler.
 */
import { fileURLToPath } from 'node:url';
import type { MarketSymbol, Tick } from '@candlestream/core';
import { DAY_MS, floorBucket, MINUTE_MS, toIso } from '@candlestream/core';
import { migrate, Repository } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess } from '@candlestream/testkit';
import {
  createTestDatabase,
  needServices,
  percentile,
  spawnService,
  uniqueName,
} from '@candlestream/testkit';
import { afterAll, bench, describe } from 'vitest';

const services = needServices(['postgres', 'redis', 'kafka']);
const DATASTORE_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const PLAIN_MAIN = fileURLToPath(new URL('./bench/plain-server.ts', import.meta.url));
const CONCURRENCY = 8;
const LOAD_MS = 3_000;
const WARMUP_REQUESTS = 20;
const SYMBOL = 'BTC-USD' as MarketSymbol;
const ONCE = { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 };

const rows: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  process.stdout.write(
    `\ndatastore figures (${CONCURRENCY} concurrent, ${LOAD_MS / 1_000} s each):\n${rows.join('\n')}\n`,
  );
});

/** Closed-loop load: CONCURRENCY workers, each sending the next request when the last returns. */
async function load(label: string, url: string): Promise<void> {
  for (let i = 0; i < WARMUP_REQUESTS; i++) {
    const r = await fetch(url);
    if (r.status !== 200) throw new Error(`${label}: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  }
  const latencies: number[] = [];
  const deadline = performance.now() + LOAD_MS;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        const r = await fetch(url);
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`${label}: ${r.status}`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1_000;
  latencies.sort((a, b) => a - b);
  rows.push(
    `  ${label.padEnd(50)} ${String(Math.round(latencies.length / seconds)).padStart(6)} req/s   p50 ${percentile(latencies, 50).toFixed(1)} ms   p99 ${percentile(latencies, 99).toFixed(1)} ms`,
  );
}

describe.skipIf(services.skip)('datastore over HTTP', async () => {
  const db = await createTestDatabase(services.get('postgres').url, 'bench-datastore');
  cleanups.push(() => db.drop());
  await migrate({ url: db.url }, { logger: silentLogger() });
  // A year of trades every 10 minutes (every 1h bar exists) and one dense closed day (1m bars).
  const now = Date.now();
  const day = floorBucket(now - 3 * DAY_MS, '1d');
  const trades: Tick[] = [];
  let price = 37_000;
  const push = (ts: number, i: number): void => {
    price *= 1 + ((i % 7) - 3) / 10_000;
    trades.push({
      v: 1,
      symbol: SYMBOL,
      ts,
      price: Math.round(price * 100) / 100,
      size: 0.01 + (i % 5) / 100,
      side: 'buy',
      id: `b${ts}`,
      source: 'synthetic',
    });
  };
  let i = 0;
  for (let ts = floorBucket(now - 366 * DAY_MS, '1h'); ts < now; ts += 10 * MINUTE_MS)
    push(ts + 7, i++);
  for (let ts = day; ts < day + DAY_MS; ts += 20_000) push(ts + 3, i++);
  const repository = new Repository({ url: db.url, logger: silentLogger() });
  trades.sort((a, b) => a.ts - b.ts);
  for (let k = 0; k < trades.length; k += 5_000)
    await repository.insertTrades(trades.slice(k, k + 5_000));
  await repository.close();

  const env = {
    KAFKA_BROKERS: services.get('kafka').url,
    DATABASE_URL: db.url,
    PORT: '0',
    LOG_LEVEL: 'warn',
    SYMBOLS: SYMBOL,
    RATE_LIMIT_PER_MINUTE: '1000000',
  };
  const started: ServiceProcess[] = [];
  const start = async (entry: string, extra: Record<string, string>): Promise<string> => {
    const p = spawnService(entry, { ...env, ...extra, LOG_LEVEL: 'info' });
    started.push(p);
    cleanups.push(() => p.kill());
    const line = await p.waitForLine((l) => l['msg'] === 'listening', 60_000);
    return `http://127.0.0.1:${String(line['port'])}`;
  };
  const cached = await start(DATASTORE_MAIN, {
    REDIS_URL: services.get('redis').url,
    CACHE_PREFIX: `${uniqueName('bench')}:`,
  });
  const uncached = await start(DATASTORE_MAIN, {});
  const plain = await start(PLAIN_MAIN, {});

  const oneDay = `symbol=${SYMBOL}&interval=1m&startDate=${toIso(day)}&endDate=${toIso(day + DAY_MS)}`;
  const oneYear = `symbol=${SYMBOL}&interval=1h&startDate=${toIso(floorBucket(now - 365 * DAY_MS, '1h'))}&endDate=${toIso(floorBucket(now, '1h'))}`;

  bench(
    '1 day of 1m bars, chunk cache (Redis)',
    () => load('datastore: 1 day of 1m, from the cache', `${cached}/ohlcv?${oneDay}`),
    ONCE,
  );
  bench(
    '1 day of 1m bars, no cache (database)',
    () => load('datastore: 1 day of 1m, from the database', `${uncached}/ohlcv?${oneDay}`),
    ONCE,
  );
  bench(
    'baseline: plain express, direct query, 1 day of 1m',
    () => load('baseline: plain handler, 1 day of 1m', `${plain}/ohlcv?${oneDay}`),
    ONCE,
  );
  bench(
    '1 year of 1h bars, chunk cache (Redis)',
    () => load('datastore: 1 year of 1h, from the cache', `${cached}/ohlcv?${oneYear}`),
    ONCE,
  );
  bench(
    '1 year of 1h bars, no cache (database)',
    () => load('datastore: 1 year of 1h, from the database', `${uncached}/ohlcv?${oneYear}`),
    ONCE,
  );
  bench(
    'baseline: plain express, direct query, 1 year of 1h',
    () => load('baseline: plain handler, 1 year of 1h', `${plain}/ohlcv?${oneYear}`),
    ONCE,
  );
});
