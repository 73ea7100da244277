/**
 * The live pipeline's speed, beside baselines measured in the same run. The broker, the producer
 * and the fixed consumer are each a process of their own, as `pnpm start` runs them; PostgreSQL
 * and Redis are real.
 * - sustained throughput: synthetic trades from the producer until they are rows in PostgreSQL,
 *   beside the same trades only through the broker (kafkajs produce then consume, no database,
 *   in the producer's batches of PRODUCER_BATCH_TRADES, one request in flight) and only into the
 *   database: one COPY into `ticks`, the fastest honest way to get the rows there, and (an extra
 *   row) `insertTrades`, what the consumer calls, in the same batches;
 * - latency: a trade's publication until its `bar-updates` message arrives (p50, p99), beside a
 *   plain message's publication until a consumer of the same broker sees it;
 * - scale: throughput and the consumer's peak RSS with 1, 100 and 1,000 symbols.
 * Figures are printed as tables at the end; vitest's own ops/s line is one run each.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { spawnBrokerProcess } from '@candlestream/broker/testing';
import type { MarketSymbol, Tick } from '@candlestream/core';
import { encodeTick, systemClock, toIso } from '@candlestream/core';
import { migrate, Repository } from '@candlestream/db';
import type { ConsumedBatch } from '@candlestream/kafka';
import {
  BatchConsumer,
  createKafka,
  ensureTopics,
  KafkaPublisher,
  TOPICS,
} from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { createSyntheticSource } from '@candlestream/producer';
import {
  createTestDatabase,
  needServices,
  percentile,
  spawnService,
  uniqueName,
  waitUntil,
} from '@candlestream/testkit';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, bench, describe } from 'vitest';
import { PUBLISHED_AT_HEADER } from './pipeline.js';

const services = needServices(['postgres', 'redis']);
const CONSUMER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const PRODUCER_MAIN = fileURLToPath(new URL('../../producer/src/main.ts', import.meta.url));
const THROUGHPUT_TRADES = 100_000;
/**
 * The producer's batch (services/producer/src/service.ts MAX_BATCH_TRADES, not exported): its
 * BatchingPublisher sends at most this many trades a request, one request at a time, after a
 * LINGER_MS of 5 that never applies while it is behind (a full batch goes at once).
 */
const PRODUCER_BATCH_TRADES = 2_000;
const LATENCY_SAMPLES = 400;
const LATENCY_GAP_MS = 10;
const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD'] as MarketSymbol[];
const SYNTHETIC_RATE = 50;
const SYNTHETIC_START = '2026-01-05T00:00:00Z';
const SCALE_SYMBOLS = [1, 100, 1_000];
const RSS_SAMPLE_MS = 25;
/** Long runs on a busy machine: wait generously before calling one failed. */
const BENCH_WAIT_MS = 300_000;
const ONCE = { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 };
const logger = silentLogger();

const rows: Record<string, string | number>[] = [];
const scaleRows: Record<string, string | number>[] = [];
const cleanups: (() => Promise<void>)[] = [];

function printTable(title: string, table: Record<string, string | number>[]): void {
  process.stdout.write(`\n${title}\n`);
  for (const row of table) {
    process.stdout.write(
      `  ${Object.entries(row)
        .map(([k, v]) => (k === 'measure' ? String(v).padEnd(56) : `${k} ${v}`))
        .join('  ')}\n`,
    );
  }
}

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  printTable('live pipeline figures (one run each):', rows);
  printTable(
    `live pipeline scale (${THROUGHPUT_TRADES} trades, ${SYNTHETIC_RATE} trades/s of event time in all, by symbol count):`,
    scaleRows,
  );
});

async function syntheticTrades(count: number, seed: number): Promise<Tick[]> {
  const source = createSyntheticSource({
    symbols: SYMBOLS,
    seed,
    tradesPerSecond: SYNTHETIC_RATE,
    startTs: Date.parse(SYNTHETIC_START),
    limit: count,
  });
  const out: Tick[] = [];
  for await (const t of source.trades({ signal: new AbortController().signal })) out.push(t);
  return out;
}

/** `n` distinct symbols, `S0000-USD` on. */
function manySymbols(n: number): MarketSymbol[] {
  return Array.from({ length: n }, (_, i) => `S${String(i).padStart(4, '0')}-USD` as MarketSymbol);
}

/** Resident memory of a process in MB, from /proc (Linux). */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? 0) / 1_024;
}

async function database() {
  const db = await createTestDatabase(services.get('postgres').url, 'bench-pipeline');
  cleanups.push(() => db.drop());
  await migrate({ url: db.url }, { logger });
  return db;
}

/**
 * The broker as its own process, as `pnpm start` runs it: in this one it would share the event
 * loop with the bench's own producer and consumers, and the figures would measure that too.
 */
async function environment() {
  const dataDir = await mkdtemp(join(tmpdir(), 'cs-bench-pipeline-'));
  const running = await spawnBrokerProcess(['--data-dir', dataDir]);
  cleanups.push(async () => {
    running.child.kill('SIGTERM');
    await running.exited;
    await rm(dataDir, { recursive: true, force: true });
  });
  const db = await database();
  const brokers = [running.brokers];
  const env = {
    KAFKA_BROKERS: brokers[0]!,
    DATABASE_URL: db.url,
    REDIS_URL: services.get('redis').url,
    CACHE_PREFIX: `${uniqueName('bench')}:`,
    HEALTH_PORT: '0',
  };
  return { db, brokers, env };
}

/**
 * THROUGHPUT_TRADES synthetic trades of `symbols` from the producer process until they are rows
 * in PostgreSQL, timed from the first stored row (so process start-up is not counted); the
 * consumer process's VmRSS sampled every RSS_SAMPLE_MS meanwhile.
 */
async function runPipeline(symbols: readonly MarketSymbol[]) {
  const { db, env } = await environment();
  const consumer = spawnService(CONSUMER_MAIN, env);
  cleanups.push(() => consumer.kill().then(() => undefined));
  await consumer.waitForLine((l) => l['to'] === 'consuming.healthy', BENCH_WAIT_MS);
  const pid = consumer.child.pid!;
  const rssIdle = rssMb(pid);
  let rssPeak = rssIdle;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(pid))), RSS_SAMPLE_MS);
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  try {
    const stored = async (): Promise<number> =>
      (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ticks')).rows[0]!.n;
    const producer = spawnService(PRODUCER_MAIN, {
      ...env,
      PRODUCER_SOURCE: 'synthetic',
      SYMBOLS: symbols.join(','),
      SYNTHETIC_SEED: '1',
      SYNTHETIC_RATE: String(SYNTHETIC_RATE),
      SYNTHETIC_START,
      SYNTHETIC_LIMIT: String(THROUGHPUT_TRADES),
    });
    cleanups.push(() => producer.kill().then(() => undefined));
    let first = 0;
    await waitUntil(
      'the first stored trade',
      async () => (first = await stored()) > 0,
      BENCH_WAIT_MS,
    );
    const started = performance.now();
    await waitUntil(
      'all trades stored',
      async () => (await stored()) >= THROUGHPUT_TRADES,
      BENCH_WAIT_MS,
    );
    const seconds = (performance.now() - started) / 1_000;
    const trades = THROUGHPUT_TRADES - first;
    await producer.kill();
    await consumer.kill();
    return { trades, seconds, tradesPerSecond: trades / seconds, rssIdle, rssPeak };
  } finally {
    clearInterval(sampler);
    await pool.end();
  }
}

/** `trades` as COPY text rows (tab-separated; none of the values needs escaping). */
function* copyText(trades: readonly Tick[]): Generator<string> {
  for (let i = 0; i < trades.length; i += PRODUCER_BATCH_TRADES) {
    let chunk = '';
    for (const t of trades.slice(i, i + PRODUCER_BATCH_TRADES))
      chunk += `${t.symbol}\t${toIso(t.ts)}\t${t.id}\t${t.price}\t${t.size}\t${t.side}\t${t.source}\n`;
    yield chunk;
  }
}

describe.skipIf(services.skip)('live pipeline', () => {
  bench(
    `sustained: ${THROUGHPUT_TRADES} trades producer → broker → consumer → PostgreSQL`,
    async () => {
      const r = await runPipeline(SYMBOLS);
      rows.push({
        measure: `pipeline: producer → rows in PostgreSQL (${SYMBOLS.length} symbols)`,
        trades: r.trades,
        seconds: +r.seconds.toFixed(2),
        'trades/s': Math.round(r.tradesPerSecond),
      });
    },
    ONCE,
  );
  bench(
    'baseline: the same trades through the broker only (produce, consume)',
    async () => {
      const { brokers } = await environment();
      const trades = await syntheticTrades(THROUGHPUT_TRADES, 2);
      const kafka = createKafka({ brokers, clientId: 'bench', logger });
      await ensureTopics(kafka, [TOPICS.ticks]);
      const publisher = new KafkaPublisher(kafka);
      await publisher.connect();
      let consumed = 0;
      // The consumer's own settings (BatchConsumer defaults, as the fixed consumer uses them).
      const consumer = new BatchConsumer(kafka, {
        groupId: uniqueName('bench'),
        topics: [TOPICS.ticks.name],
      });
      await consumer.start((batch) => {
        consumed += batch.messages.length;
        return Promise.resolve();
      });
      const started = performance.now();
      for (let i = 0; i < trades.length; i += PRODUCER_BATCH_TRADES) {
        await publisher.send(
          TOPICS.ticks.name,
          trades
            .slice(i, i + PRODUCER_BATCH_TRADES)
            .map((t) => ({ key: t.symbol, value: encodeTick(t) })),
        );
      }
      await waitUntil('all consumed', () => consumed >= THROUGHPUT_TRADES, BENCH_WAIT_MS);
      const seconds = (performance.now() - started) / 1_000;
      rows.push({
        measure: `baseline: broker only (kafkajs, ${PRODUCER_BATCH_TRADES} a request)`,
        trades: THROUGHPUT_TRADES,
        seconds: +seconds.toFixed(2),
        'trades/s': Math.round(THROUGHPUT_TRADES / seconds),
      });
      await consumer.stop();
      await publisher.disconnect();
    },
    ONCE,
  );

  bench(
    'baseline: the same trades into the database only (one COPY into ticks)',
    async () => {
      const db = await database();
      const trades = await syntheticTrades(THROUGHPUT_TRADES, 3);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        const started = performance.now();
        const copy = client.query(
          copyFrom(
            'COPY ticks (symbol, ts, trade_id, price, size, side, source) FROM STDIN (FORMAT text)',
          ),
        );
        await pipeline(Readable.from(copyText(trades)), copy);
        const seconds = (performance.now() - started) / 1_000;
        const { rows: count } = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM ticks',
        );
        if (count[0]!.n !== THROUGHPUT_TRADES)
          throw new Error(`COPY stored ${count[0]!.n} of ${THROUGHPUT_TRADES} trades`);
        rows.push({
          measure: 'baseline: database only (COPY into ticks)',
          trades: THROUGHPUT_TRADES,
          seconds: +seconds.toFixed(2),
          'trades/s': Math.round(THROUGHPUT_TRADES / seconds),
        });
      } finally {
        await client.end();
      }
    },
    ONCE,
  );

  bench(
    `database: insertTrades, ${PRODUCER_BATCH_TRADES} a batch (what the consumer calls)`,
    async () => {
      const db = await database();
      const trades = await syntheticTrades(THROUGHPUT_TRADES, 3);
      const repository = new Repository({ url: db.url, logger });
      try {
        const started = performance.now();
        for (let i = 0; i < trades.length; i += PRODUCER_BATCH_TRADES)
          await repository.insertTrades(trades.slice(i, i + PRODUCER_BATCH_TRADES));
        const seconds = (performance.now() - started) / 1_000;
        rows.push({
          measure: 'database: insertTrades (what the consumer calls)',
          trades: THROUGHPUT_TRADES,
          seconds: +seconds.toFixed(2),
          'trades/s': Math.round(THROUGHPUT_TRADES / seconds),
        });
      } finally {
        await repository.close();
      }
    },
    ONCE,
  );

  bench(
    `latency: trade published → its bar-updates message (${LATENCY_SAMPLES} trades, one every ${LATENCY_GAP_MS} ms)`,
    async () => {
      const { brokers, env } = await environment();
      const consumer = spawnService(CONSUMER_MAIN, env);
      cleanups.push(() => consumer.kill().then(() => undefined));
      await consumer.waitForLine((l) => l['to'] === 'consuming.healthy', BENCH_WAIT_MS);
      const kafka = createKafka({ brokers, clientId: 'bench', logger });
      const publisher = new KafkaPublisher(kafka);
      await publisher.connect();
      const latencies: number[] = [];
      const listener = new BatchConsumer(kafka, {
        groupId: uniqueName('bench'),
        topics: [TOPICS.barUpdates.name],
        fromBeginning: false,
        maxWaitTimeMs: 10,
      });
      const seen = new Set<string>();
      let newestSeen = 0;
      await listener.start((batch: ConsumedBatch) => {
        const now = Date.now();
        for (const m of batch.messages) {
          const publishedAt = m.headers[PUBLISHED_AT_HEADER];
          // One sample per consumer batch: its newest trade's publication → the first update
          // that carries it (a batch of several trades is one sample, timed by its newest).
          if (publishedAt && !seen.has(publishedAt)) {
            seen.add(publishedAt);
            latencies.push(now - Number(publishedAt));
            newestSeen = Math.max(newestSeen, Number(publishedAt));
          }
        }
        return Promise.resolve();
      });
      await new Promise((r) => setTimeout(r, 1_500)); // the listener's group join settles
      let lastSent = 0;
      for (let i = 0; i < LATENCY_SAMPLES; i++) {
        const ts = systemClock.now();
        const tick: Tick = {
          v: 1,
          symbol: SYMBOLS[i % SYMBOLS.length]!,
          ts,
          price: 100 + (i % 10),
          size: 1,
          side: 'buy',
          id: `lat-${i}`,
          source: 'synthetic',
        };
        await publisher.send(TOPICS.ticks.name, [
          { key: tick.symbol, value: encodeTick(tick), timestamp: ts },
        ]);
        lastSent = ts;
        await new Promise((r) => setTimeout(r, LATENCY_GAP_MS));
      }
      await waitUntil('the last trade’s bar update', () => newestSeen >= lastSent, 30_000);
      latencies.sort((a, b) => a - b);
      rows.push({
        measure: 'latency: trade published → bar-updates received',
        samples: latencies.length,
        'p50 ms': percentile(latencies, 50),
        'p99 ms': percentile(latencies, 99),
      });
      await listener.stop();
      await publisher.disconnect();
      await consumer.kill();
    },
    ONCE,
  );

  bench(
    'baseline latency: a message published → a consumer of the same broker receives it',
    async () => {
      const { brokers } = await environment();
      const kafka = createKafka({ brokers, clientId: 'bench', logger });
      const topic = { name: uniqueName('bench-latency'), partitions: 1 };
      await ensureTopics(kafka, [topic]);
      const publisher = new KafkaPublisher(kafka);
      await publisher.connect();
      const latencies: number[] = [];
      const listener = new BatchConsumer(kafka, {
        groupId: uniqueName('bench'),
        topics: [topic.name],
        fromBeginning: false,
        maxWaitTimeMs: 10,
      });
      await listener.start((batch) => {
        const now = Date.now();
        for (const m of batch.messages) latencies.push(now - m.timestamp);
        return Promise.resolve();
      });
      await new Promise((r) => setTimeout(r, 1_500));
      for (let i = 0; i < LATENCY_SAMPLES; i++) {
        await publisher.send(topic.name, [{ key: 'k', value: 'x', timestamp: Date.now() }]);
        await new Promise((r) => setTimeout(r, LATENCY_GAP_MS));
      }
      await waitUntil('the messages', () => latencies.length >= LATENCY_SAMPLES, 30_000);
      latencies.sort((a, b) => a - b);
      rows.push({
        measure: 'baseline latency: broker hop (publish → consume)',
        samples: latencies.length,
        'p50 ms': percentile(latencies, 50),
        'p99 ms': percentile(latencies, 99),
      });
      await listener.stop();
      await publisher.disconnect();
    },
    ONCE,
  );

  for (const n of SCALE_SYMBOLS) {
    bench(
      `scale: ${THROUGHPUT_TRADES} trades of ${n} symbol(s) through the pipeline`,
      async () => {
        const r = await runPipeline(manySymbols(n));
        scaleRows.push({
          measure: `${n} symbol${n === 1 ? '' : 's'}`,
          trades: r.trades,
          seconds: +r.seconds.toFixed(2),
          'trades/s': Math.round(r.tradesPerSecond),
          'consumer RSS idle MB': Math.round(r.rssIdle),
          'peak MB': Math.round(r.rssPeak),
        });
      },
      ONCE,
    );
  }
});
