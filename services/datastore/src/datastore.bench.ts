/**
 * The datastore under HTTP load, beside a baseline measured in the same run: a plain express
 * handler doing one direct query (bench/plain-server.ts). Each server is its own process; the load
 * generator here keeps CONCURRENCY requests in flight for LOAD_MS and reports requests/s, p50, p99.
 * - 1 day of 1m bars (a closed day): from the Redis chunk cache, and with no cache (database);
 * - 1 year of 1h bars (cached);
 * - the same two queries through the plain handler;
 * - a burst: BURST_REQUESTS concurrent 3-day 1m requests from one client, with another client's
 *   requests meanwhile, against the datastore (bounded per client and in total) and against the
 *   plain handler (unbounded): latencies, answers by status, and the server's peak RSS.
 */
import { readFileSync } from 'node:fs';
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
/** The burst issue 14 measured: 500 concurrent 3-day 1m requests (p50 7.6 s, RSS 238 → 625 MB). */
const BURST_REQUESTS = 500;
/** The other client's requests during the burst, one after the other. */
const BYSTANDER_REQUESTS = 10;
const RSS_SAMPLE_MS = 25;

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

/** Resident memory of a process in MB, from /proc (Linux). */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? 0) / 1_024;
}

/**
 * BURST_REQUESTS at once from one client (X-Forwarded-For 198.51.100.1) while a second client
 * (198.51.100.2) asks BYSTANDER_REQUESTS times in a row; the server's RSS sampled throughout.
 */
async function burst(label: string, url: string, pid: number): Promise<void> {
  const rssBefore = rssMb(pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(pid))), RSS_SAMPLE_MS);
  const timed = async (client: string): Promise<{ status: number; ms: number }> => {
    const t = performance.now();
    const r = await fetch(url, { headers: { 'x-forwarded-for': client } });
    await r.arrayBuffer();
    return { status: r.status, ms: performance.now() - t };
  };
  const flood = Promise.all(Array.from({ length: BURST_REQUESTS }, () => timed('198.51.100.1')));
  const bystander: number[] = [];
  for (let i = 0; i < BYSTANDER_REQUESTS; i++) {
    const answer = await timed('198.51.100.2');
    if (answer.status !== 200) throw new Error(`${label}: bystander got ${answer.status}`);
    bystander.push(answer.ms);
  }
  const answers = await flood;
  clearInterval(sampler);
  const byStatus = new Map<number, number>();
  for (const a of answers) byStatus.set(a.status, (byStatus.get(a.status) ?? 0) + 1);
  const served = answers.filter((a) => a.status === 200).map((a) => a.ms);
  const all = answers.map((a) => a.ms).sort((a, b) => a - b);
  served.sort((a, b) => a - b);
  bystander.sort((a, b) => a - b);
  const statuses = [...byStatus].map(([status, n]) => `${n}×${status}`).join(' ');
  rows.push(
    `  ${label.padEnd(50)} answers ${statuses}   all p50 ${percentile(all, 50).toFixed(0)} ms max ${all[all.length - 1]!.toFixed(0)} ms   served p50 ${served.length ? percentile(served, 50).toFixed(0) : '-'} ms   other client p50 ${percentile(bystander, 50).toFixed(0)} ms max ${bystander[bystander.length - 1]!.toFixed(0)} ms   RSS ${rssBefore.toFixed(0)} → peak ${rssPeak.toFixed(0)} MB`,
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
  // Three dense days ending with the closed one: the burst asks for all three.
  for (let ts = day - 2 * DAY_MS; ts < day + DAY_MS; ts += 20_000) push(ts + 3, i++);
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
  const pids = new Map<string, number>();
  const start = async (entry: string, extra: Record<string, string>): Promise<string> => {
    const p: ServiceProcess = spawnService(entry, { ...env, ...extra, LOG_LEVEL: 'info' });
    cleanups.push(() => p.kill());
    const line = await p.waitForLine((l) => l['msg'] === 'listening', 60_000);
    const url = `http://127.0.0.1:${String(line['port'])}`;
    pids.set(url, p.child.pid!);
    return url;
  };
  const cached = await start(DATASTORE_MAIN, {
    REDIS_URL: services.get('redis').url,
    CACHE_PREFIX: `${uniqueName('bench')}:`,
  });
  // Trusting loopback's X-Forwarded-For lets the burst bench be two clients from one machine.
  const uncached = await start(DATASTORE_MAIN, { TRUST_PROXY: 'loopback' });
  const plain = await start(PLAIN_MAIN, {});

  const oneDay = `symbol=${SYMBOL}&interval=1m&startDate=${toIso(day)}&endDate=${toIso(day + DAY_MS)}`;
  const threeDays = `symbol=${SYMBOL}&interval=1m&startDate=${toIso(day - 2 * DAY_MS)}&endDate=${toIso(day + DAY_MS)}`;
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
  bench(
    `burst: ${BURST_REQUESTS} concurrent 3-day 1m requests, datastore (bounded)`,
    () =>
      burst(
        `datastore: burst of ${BURST_REQUESTS}, 3 days of 1m`,
        `${uncached}/ohlcv?${threeDays}`,
        pids.get(uncached)!,
      ),
    ONCE,
  );
  bench(
    `baseline: plain express, burst of ${BURST_REQUESTS}`,
    () =>
      burst(
        `baseline: plain handler, burst of ${BURST_REQUESTS}`,
        `${plain}/ohlcv?${threeDays}`,
        pids.get(plain)!,
      ),
    ONCE,
  );
});
