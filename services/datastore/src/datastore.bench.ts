/**
 * The datastore under HTTP load, beside a baseline measured in the same run: a plain express
 * handler doing one direct query (bench/plain-server.ts). Each server is its own process, and so
 * is the load generator (the testkit's runHttpLoad, autocannon): CONCURRENCY connections, closed
 * loop, for LOAD_MS, reporting requests/s, p50 and p99 of the answers, all of which must be 200.
 * - 1 day of 1m bars (a closed day): cached (prepared pages in memory over the Redis chunks;
 *   also gzipped, and revalidated with If-None-Match), and with no cache at all (database);
 * - 1 year of 1h bars (cached, and from the database);
 * - the same two queries through the plain handler;
 * - a burst: BURST_REQUESTS concurrent 3-day 1m requests from one client, with another client's
 *   requests meanwhile, against the datastore (bounded per client and in total) and against the
 *   plain handler (unbounded): latencies, answers by status, and the server's peak RSS. Both
 *   clients are autocannon runs in one load process, told apart by X-Forwarded-For.
 * Then a scale table, how each cost grows:
 * - /ohlcv from the database with 1 month and with 1 year of stored history (the same closed day
 *   of 1m, and the whole stored range of 1h);
 * - a datastore's RSS with 0 and with STREAM_SUBSCRIBERS WebSocket subscribers on /stream (the
 *   clients in a process of their own, bench/ws-subscribers.ts), and how long a bar update takes
 *   from its publication on bar-updates to the first and to the last of them (one subscriber
 *   alone is the baseline).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnBrokerProcess } from '@candlestream/broker/testing';
import type { BarUpdate, MarketSymbol, Tick } from '@candlestream/core';
import { DAY_MS, floorBucket, MINUTE_MS, toIso } from '@candlestream/core';
import { migrate, Repository } from '@candlestream/db';
import { createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import type { HttpLoadResult, ServiceProcess } from '@candlestream/testkit';
import {
  closedLoop,
  createTestDatabase,
  formatStatuses,
  needServices,
  percentile,
  runHttpLoad,
  spawnService,
  uniqueName,
} from '@candlestream/testkit';
import { afterAll, bench, describe } from 'vitest';

const services = needServices(['postgres', 'redis', 'kafka']);
const DATASTORE_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const PLAIN_MAIN = fileURLToPath(new URL('./bench/plain-server.ts', import.meta.url));
const WS_SUBSCRIBERS = fileURLToPath(new URL('./bench/ws-subscribers.ts', import.meta.url));
const CONCURRENCY = 8;
const LOAD_MS = 3_000;
const WARMUP_REQUESTS = 20;
const SYMBOL = 'BTC-USD' as MarketSymbol;
/**
 * One run each. The functions are `async`: tinybench calls a plain function once more to see
 * whether it returns a promise (before warm-up and before the run), which ran a load three times.
 */
const ONCE = { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 };
/** The burst issue 14 measured: 500 concurrent 3-day 1m requests (p50 7.6 s, RSS 238 → 625 MB). */
const BURST_REQUESTS = 500;
/** The other client's requests during the burst, one after the other. */
const BYSTANDER_REQUESTS = 10;
/** A burst request may wait its turn a long time; a timeout would be counted as an error. */
const BURST_TIMEOUT_MS = 120_000;
const RSS_SAMPLE_MS = 25;
const STREAM_SUBSCRIBERS = 1_000;
/** Bar updates timed per subscriber count, one after the other. */
const STREAM_UPDATES = 20;
/** How long one update may take to reach every subscriber before the bench gives up. */
const STREAM_REACH_TIMEOUT_MS = 15_000;
/** Updates published (one at a time) until the datastore's consumer is seen delivering. */
const STREAM_WARMUP_TIMEOUT_MS = 60_000;

const FROM_DB_1M = 'datastore: 1 day of 1m, from the database';
const FROM_DB_1H = 'datastore: 1 year of 1h, from the database';

const rows: string[] = [];
const scale: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  process.stdout.write(
    `\ndatastore figures (${CONCURRENCY} concurrent, ${LOAD_MS / 1_000} s each, load from its own process):\n${rows.join('\n')}\n`,
  );
  process.stdout.write(`\ndatastore scale (how each cost grows):\n${scale.join('\n')}\n`);
});

const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '-');

function loadRow(label: string, r: HttpLoadResult, status = 200): string {
  return `  ${label.padEnd(50)} ${String(Math.round(r.requestsPerSecond)).padStart(6)} req/s   p50 ${ms(r.p50Ms)} ms   p99 ${ms(r.p99Ms)} ms   (${r.requests} answers, all ${status})`;
}

/** Results the scale table reuses, by label. */
const measured = new Map<string, HttpLoadResult>();

/** Closed-loop load from the load process: CONCURRENCY connections for LOAD_MS. */
async function load(
  label: string,
  url: string,
  options: { headers?: Record<string, string>; expectStatus?: number } = {},
): Promise<void> {
  const result = await closedLoop(label, {
    url,
    connections: CONCURRENCY,
    durationMs: LOAD_MS,
    warmupRequests: WARMUP_REQUESTS,
    ...options,
  });
  rows.push(loadRow(label, result, options.expectStatus));
  measured.set(label, result);
}

/** Resident memory of a process in MB, from /proc (Linux). */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? 0) / 1_024;
}

/**
 * BURST_REQUESTS at once from one client (X-Forwarded-For 198.51.100.1, one connection each)
 * while a second client (198.51.100.2) asks BYSTANDER_REQUESTS times in a row; both from the load
 * process, the server's RSS sampled from here throughout.
 */
async function burst(label: string, url: string, pid: number): Promise<void> {
  const rssBefore = rssMb(pid);
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(pid))), RSS_SAMPLE_MS);
  let results: HttpLoadResult[];
  try {
    results = await runHttpLoad([
      {
        url,
        connections: BURST_REQUESTS,
        amount: BURST_REQUESTS,
        headers: { 'x-forwarded-for': '198.51.100.1' },
        timeoutMs: BURST_TIMEOUT_MS,
      },
      {
        url,
        connections: 1,
        amount: BYSTANDER_REQUESTS,
        headers: { 'x-forwarded-for': '198.51.100.2' },
        timeoutMs: BURST_TIMEOUT_MS,
      },
    ]);
  } finally {
    clearInterval(sampler);
  }
  const [flood, bystander] = results as [HttpLoadResult, HttpLoadResult];
  if (bystander.okLatenciesMs.length !== BYSTANDER_REQUESTS || bystander.errors > 0)
    throw new Error(`${label}: the other client got ${formatStatuses(bystander.statuses)}`);
  if (flood.errors > 0 || flood.requests !== BURST_REQUESTS)
    throw new Error(
      `${label}: ${flood.requests} of ${BURST_REQUESTS} answered, ${flood.errors} errors`,
    );
  const all = flood.latenciesMs;
  const served = flood.okLatenciesMs;
  const other = bystander.okLatenciesMs;
  rows.push(
    `  ${label.padEnd(50)} answers ${formatStatuses(flood.statuses)}   all p50 ${percentile(all, 50).toFixed(0)} ms max ${all[all.length - 1]!.toFixed(0)} ms   served p50 ${served.length ? percentile(served, 50).toFixed(0) : '-'} ms   other client p50 ${percentile(other, 50).toFixed(0)} ms max ${other[other.length - 1]!.toFixed(0)} ms   RSS ${rssBefore.toFixed(0)} → peak ${rssPeak.toFixed(0)} MB`,
  );
}

/** Trades every 10 minutes over `days` days, then three dense days ending with `day`'s end. */
function history(now: number, days: number, day: number): Tick[] {
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
  for (let ts = floorBucket(now - days * DAY_MS, '1h'); ts < now; ts += 10 * MINUTE_MS)
    push(ts + 7, i++);
  // Three dense days ending with the closed one: the burst asks for all three.
  for (let ts = day - 2 * DAY_MS; ts < day + DAY_MS; ts += 20_000) push(ts + 3, i++);
  return trades.sort((a, b) => a.ts - b.ts);
}

async function storedDatabase(name: string, trades: readonly Tick[]): Promise<string> {
  const db = await createTestDatabase(services.get('postgres').url, name);
  cleanups.push(() => db.drop());
  await migrate({ url: db.url }, { logger: silentLogger() });
  const repository = new Repository({ url: db.url, logger: silentLogger() });
  for (let k = 0; k < trades.length; k += 5_000)
    await repository.insertTrades(trades.slice(k, k + 5_000));
  await repository.close();
  return db.url;
}

describe.skipIf(services.skip)('datastore over HTTP', async () => {
  // A year of trades every 10 minutes (every 1h bar exists) and one dense closed day (1m bars);
  // a second database holds the last month of the same, for the history scale rows.
  const now = Date.now();
  const day = floorBucket(now - 3 * DAY_MS, '1d');
  const yearUrl = await storedDatabase('bench-datastore', history(now, 366, day));
  const monthUrl = await storedDatabase('bench-datastore-month', history(now, 31, day));

  const env = {
    KAFKA_BROKERS: services.get('kafka').url,
    DATABASE_URL: yearUrl,
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
  // No cache at all: no Redis, and no prepared pages in memory (PREPARED_CACHE_MB=0).
  const uncached = await start(DATASTORE_MAIN, { TRUST_PROXY: 'loopback', PREPARED_CACHE_MB: '0' });
  const uncachedMonth = await start(DATASTORE_MAIN, {
    DATABASE_URL: monthUrl,
    PREPARED_CACHE_MB: '0',
  });
  const plain = await start(PLAIN_MAIN, {});
  // The stream datastore has a broker of its own, so nothing else in the run publishes to the
  // bar-updates it follows.
  const brokerDir = await mkdtemp(join(tmpdir(), 'cs-bench-datastore-'));
  const broker = await spawnBrokerProcess(['--data-dir', brokerDir]);
  cleanups.push(async () => {
    broker.child.kill('SIGTERM');
    await broker.exited;
    await rm(brokerDir, { recursive: true, force: true });
  });
  const streaming = await start(DATASTORE_MAIN, {
    KAFKA_BROKERS: broker.brokers,
    REDIS_URL: services.get('redis').url,
    CACHE_PREFIX: `${uniqueName('bench')}:`,
  });

  const oneDay = `symbol=${SYMBOL}&interval=1m&startDate=${toIso(day)}&endDate=${toIso(day + DAY_MS)}`;
  const threeDays = `symbol=${SYMBOL}&interval=1m&startDate=${toIso(day - 2 * DAY_MS)}&endDate=${toIso(day + DAY_MS)}`;
  const lastHour = toIso(floorBucket(now, '1h'));
  const oneYear = `symbol=${SYMBOL}&interval=1h&startDate=${toIso(floorBucket(now - 365 * DAY_MS, '1h'))}&endDate=${lastHour}`;
  const oneMonth = `symbol=${SYMBOL}&interval=1h&startDate=${toIso(floorBucket(now - 30 * DAY_MS, '1h'))}&endDate=${lastHour}`;

  bench(
    '1 day of 1m bars, chunk cache (Redis)',
    async () => {
      await load('datastore: 1 day of 1m, cached (pages in memory)', `${cached}/ohlcv?${oneDay}`);
    },
    ONCE,
  );
  bench(
    '1 day of 1m bars, cached, gzip (Accept-Encoding: gzip, as a browser asks)',
    async () => {
      await load('datastore: 1 day of 1m, cached, gzip', `${cached}/ohlcv?${oneDay}`, {
        headers: { 'accept-encoding': 'gzip' },
      });
    },
    ONCE,
  );
  bench(
    '1 day of 1m bars, cached, revalidated (If-None-Match: 304)',
    async () => {
      const url = `${cached}/ohlcv?${oneDay}`;
      const tag = (await fetch(url, { headers: { 'accept-encoding': 'identity' } })).headers.get(
        'etag',
      );
      if (!tag) throw new Error('a closed day carries no ETag');
      await load('datastore: 1 day of 1m, revalidated (304)', url, {
        headers: { 'if-none-match': tag },
        expectStatus: 304,
      });
    },
    ONCE,
  );
  bench(
    '1 day of 1m bars, no cache (database)',
    async () => {
      await load(FROM_DB_1M, `${uncached}/ohlcv?${oneDay}`);
    },
    ONCE,
  );
  bench(
    'baseline: plain express, direct query, 1 day of 1m',
    async () => {
      await load('baseline: plain handler, 1 day of 1m', `${plain}/ohlcv?${oneDay}`);
    },
    ONCE,
  );
  bench(
    '1 year of 1h bars, chunk cache (Redis)',
    async () => {
      await load('datastore: 1 year of 1h, cached (pages in memory)', `${cached}/ohlcv?${oneYear}`);
    },
    ONCE,
  );
  bench(
    '1 year of 1h bars, no cache (database)',
    async () => {
      await load(FROM_DB_1H, `${uncached}/ohlcv?${oneYear}`);
    },
    ONCE,
  );
  bench(
    'baseline: plain express, direct query, 1 year of 1h',
    async () => {
      await load('baseline: plain handler, 1 year of 1h', `${plain}/ohlcv?${oneYear}`);
    },
    ONCE,
  );
  bench(
    `burst: ${BURST_REQUESTS} concurrent 3-day 1m requests, datastore (bounded)`,
    async () => {
      await burst(
        `datastore: burst of ${BURST_REQUESTS}, 3 days of 1m`,
        `${uncached}/ohlcv?${threeDays}`,
        pids.get(uncached)!,
      );
    },
    ONCE,
  );
  bench(
    `baseline: plain express, burst of ${BURST_REQUESTS}`,
    async () => {
      await burst(
        `baseline: plain handler, burst of ${BURST_REQUESTS}`,
        `${plain}/ohlcv?${threeDays}`,
        pids.get(plain)!,
      );
    },
    ONCE,
  );

  bench(
    'scale: /ohlcv from the database, 1 month vs 1 year of stored history',
    async () => {
      const month1m = await closedLoop('1 month stored: 1 day of 1m', {
        url: `${uncachedMonth}/ohlcv?${oneDay}`,
        connections: CONCURRENCY,
        durationMs: LOAD_MS,
        warmupRequests: WARMUP_REQUESTS,
      });
      const month1h = await closedLoop('1 month stored: whole range of 1h', {
        url: `${uncachedMonth}/ohlcv?${oneMonth}`,
        connections: CONCURRENCY,
        durationMs: LOAD_MS,
        warmupRequests: WARMUP_REQUESTS,
      });
      const line = (label: string, r: HttpLoadResult | undefined): string =>
        r
          ? `  ${label.padEnd(58)} p50 ${ms(r.p50Ms).padStart(7)} ms   p99 ${ms(r.p99Ms).padStart(7)} ms   ${String(Math.round(r.requestsPerSecond)).padStart(6)} req/s`
          : `  ${label.padEnd(58)} (not measured in this run)`;
      scale.push(
        `  /ohlcv from the database, ${CONCURRENCY} concurrent, by stored history:`,
        line('  1 month stored: the closed day of 1m (1,440 bars)', month1m),
        line('  1 year stored:  the closed day of 1m (1,440 bars)', measured.get(FROM_DB_1M)),
        line('  1 month stored: the whole range of 1h (720 bars)', month1h),
        line('  1 year stored:  the whole range of 1h (8,760 bars)', measured.get(FROM_DB_1H)),
      );
    },
    ONCE,
  );

  bench(
    `scale: datastore RSS and bar-update fan-out, 0 / 1 / ${STREAM_SUBSCRIBERS} /stream subscribers`,
    async () => {
      const pid = pids.get(streaming)!;
      const wsUrl = `${streaming.replace('http:', 'ws:')}/stream`;
      const kafka = createKafka({
        brokers: [broker.brokers],
        clientId: 'bench',
        logger: silentLogger(),
      });
      const publisher = new KafkaPublisher(kafka);
      await publisher.connect();
      cleanups.push(() => publisher.disconnect());
      let close = 50_000;
      /** Publishes one forming bar of a close never used before; its time is publication's. */
      const publish = async (): Promise<{ close: number; at: number }> => {
        close += 1;
        const update: BarUpdate = {
          v: 1,
          symbol: SYMBOL,
          interval: '1m',
          bar: {
            time: floorBucket(Date.now(), '1m'),
            open: close,
            high: close,
            low: close,
            close,
            volume: 1,
          },
          final: false,
        };
        const at = performance.timeOrigin + performance.now();
        await publisher.send(TOPICS.barUpdates.name, [
          { key: SYMBOL, value: JSON.stringify(update) },
        ]);
        return { close, at };
      };
      const rssIdle = rssMb(pid);
      const fanOut = async (
        count: number,
      ): Promise<{
        first: number[];
        last: number[];
        rss: number;
        rssPeak: number;
        connectMs: number;
      }> => {
        const clients = spawnService(WS_SUBSCRIBERS, {}, [wsUrl, String(count), SYMBOL, '1m']);
        let rssPeak = 0;
        const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(pid))), RSS_SAMPLE_MS);
        try {
          const ready = await clients.waitForLine((l) => l['msg'] === 'ready', 120_000);
          const rss = rssMb(pid);
          const reached = (c: number, timeoutMs: number) =>
            clients.waitForLine((l) => l['msg'] === 'reached' && l['close'] === c, timeoutMs);
          // Until one update reaches them all: the datastore's consumer has joined and delivers.
          const deadline = Date.now() + STREAM_WARMUP_TIMEOUT_MS;
          for (;;) {
            const { close: c } = await publish();
            try {
              await reached(c, 2_000);
              break;
            } catch (err) {
              if (Date.now() > deadline) throw err;
            }
          }
          const first: number[] = [];
          const last: number[] = [];
          for (let k = 0; k < STREAM_UPDATES; k++) {
            const { close: c, at } = await publish();
            const line = await reached(c, STREAM_REACH_TIMEOUT_MS);
            first.push(Number(line['first']) - at);
            last.push(Number(line['last']) - at);
          }
          first.sort((a, b) => a - b);
          last.sort((a, b) => a - b);
          return { first, last, rss, rssPeak, connectMs: Number(ready['ms']) };
        } finally {
          clearInterval(sampler);
          await clients.kill();
        }
      };
      const one = await fanOut(1);
      const many = await fanOut(STREAM_SUBSCRIBERS);
      const row = (label: string, r: { first: number[]; last: number[] }, all: boolean): string =>
        `    ${label.padEnd(56)} first p50 ${ms(percentile(r.first, 50))} ms${all ? `   last (all received) p50 ${ms(percentile(r.last, 50))} ms p99 ${ms(percentile(r.last, 99))} ms max ${ms(r.last[r.last.length - 1]!)} ms` : ` p99 ${ms(percentile(r.first, 99))} ms`}`;
      scale.push(
        `  /stream, a datastore process with its own broker (${STREAM_UPDATES} updates each, published one at a time):`,
        `    ${'datastore RSS'.padEnd(56)} 0 subscribers ${rssIdle.toFixed(0)} MB   ${STREAM_SUBSCRIBERS} subscribed ${many.rss.toFixed(0)} MB, peak while connected ${many.rssPeak.toFixed(0)} MB (+${(((many.rssPeak - rssIdle) * 1_024) / STREAM_SUBSCRIBERS).toFixed(0)} KB each at peak; all connected in ${many.connectMs} ms)`,
        row('baseline: 1 subscriber, published → received', one, false),
        row(`${STREAM_SUBSCRIBERS} subscribers, published → received`, many, true),
      );
    },
    ONCE,
  );
});
