/**
 * The live pipeline's speed, beside baselines measured in the same run:
 * - sustained throughput: synthetic trades from the producer until they are rows in PostgreSQL
 *   (both services in this process, the embedded broker, real PostgreSQL and Redis), beside the
 *   same trades only through the broker (kafkajs produce then consume, no database) and only into
 *   the database (`insertTrades` in batches of 2,000, no broker);
 * - latency: a trade's publication until its `bar-updates` message arrives (p50, p99), beside a
 *   plain message's publication until a consumer of the same broker sees it.
 * Figures are printed as a table at the end; vitest's own ops/s line is one run each.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnBrokerProcess } from '@candlestream/broker/testing';
import type { MarketSymbol, Tick } from '@candlestream/core';
import { encodeTick, systemClock } from '@candlestream/core';
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
import { fileURLToPath } from 'node:url';
import { afterAll, bench, describe } from 'vitest';
import { loadFixedConsumerConfig } from './config.js';
import { PUBLISHED_AT_HEADER } from './pipeline.js';
import { startFixedConsumer } from './service.js';

const services = needServices(['postgres', 'redis']);
const CONSUMER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const PRODUCER_MAIN = fileURLToPath(new URL('../../producer/src/main.ts', import.meta.url));
const THROUGHPUT_TRADES = 100_000;
const LATENCY_SAMPLES = 400;
const LATENCY_GAP_MS = 10;
const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD'] as MarketSymbol[];
/** Long runs on a busy machine: wait generously before calling one failed. */
const BENCH_WAIT_MS = 300_000;
const ONCE = { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 };
const logger = silentLogger();

const rows: Record<string, string | number>[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  process.stdout.write('\nlive pipeline figures (one run each):\n');
  for (const row of rows) {
    process.stdout.write(
      `  ${Object.entries(row)
        .map(([k, v]) => (k === 'measure' ? String(v).padEnd(52) : `${k} ${v}`))
        .join('  ')}\n`,
    );
  }
});

async function syntheticTrades(count: number, seed: number): Promise<Tick[]> {
  const source = createSyntheticSource({
    symbols: SYMBOLS,
    seed,
    tradesPerSecond: 50,
    startTs: Date.UTC(2026, 0, 5),
    limit: count,
  });
  const out: Tick[] = [];
  for await (const t of source.trades({ signal: new AbortController().signal })) out.push(t);
  return out;
}

/**
 * The broker as its own process, as `pnpm start` runs it: in this one it would share the event
 * loop with the bench's own producer and consumers, and the figures would measure that too.
 */
async function environment() {
  const dataDir = await mkdtemp(join(tmpdir(), 'cs-bench-pipeline-'));
  const running = await spawnBrokerProcess(['--data-dir', dataDir]);
  const broker = {
    stop: async () => {
      running.child.kill('SIGTERM');
      await running.exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  const db = await createTestDatabase(services.get('postgres').url, 'bench-pipeline');
  await migrate({ url: db.url }, { logger });
  const brokers = [running.brokers];
  const env = {
    KAFKA_BROKERS: brokers[0]!,
    DATABASE_URL: db.url,
    REDIS_URL: services.get('redis').url,
    CACHE_PREFIX: `${uniqueName('bench')}:`,
    HEALTH_PORT: '0',
  };
  return { broker, db, brokers, env };
}

describe.skipIf(services.skip)('live pipeline', () => {
  bench(
    `sustained: ${THROUGHPUT_TRADES} trades producer → broker → consumer → PostgreSQL`,
    async () => {
      const { broker, db, env } = await environment();
      cleanups.push(
        () => broker.stop(),
        () => db.drop(),
      );
      // Each service in its own process, as `pnpm start` runs them; the broker stays in this one.
      const consumer = spawnService(CONSUMER_MAIN, env);
      cleanups.push(() => consumer.kill().then(() => undefined));
      await consumer.waitForLine((l) => l['to'] === 'consuming.healthy');
      const pool = new pg.Pool({ connectionString: db.url, max: 1 });
      cleanups.push(() => pool.end());
      const stored = async (): Promise<number> =>
        (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ticks')).rows[0]!.n;
      const producer = spawnService(PRODUCER_MAIN, {
        ...env,
        PRODUCER_SOURCE: 'synthetic',
        SYMBOLS: SYMBOLS.join(','),
        SYNTHETIC_SEED: '1',
        SYNTHETIC_RATE: '50',
        SYNTHETIC_START: '2026-01-05T00:00:00Z',
        SYNTHETIC_LIMIT: String(THROUGHPUT_TRADES),
      });
      cleanups.push(() => producer.kill().then(() => undefined));
      // Timed from the first stored row, so process start-up is not counted.
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
      rows.push({
        measure: 'pipeline: producer → rows in PostgreSQL',
        trades,
        seconds: +seconds.toFixed(2),
        'trades/s': Math.round(trades / seconds),
      });
    },
    ONCE,
  );
  bench(
    'baseline: the same trades through the broker only (produce, consume)',
    async () => {
      const { broker, db, brokers } = await environment();
      cleanups.push(
        () => broker.stop(),
        () => db.drop(),
      );
      const trades = await syntheticTrades(THROUGHPUT_TRADES, 2);
      const kafka = createKafka({ brokers, clientId: 'bench', logger });
      await ensureTopics(kafka, [TOPICS.ticks]);
      const publisher = new KafkaPublisher(kafka);
      await publisher.connect();
      let consumed = 0;
      const consumer = new BatchConsumer(kafka, {
        groupId: uniqueName('bench'),
        topics: [TOPICS.ticks.name],
      });
      await consumer.start((batch) => {
        consumed += batch.messages.length;
        return Promise.resolve();
      });
      const started = performance.now();
      for (let i = 0; i < trades.length; i += 2_000) {
        await publisher.send(
          TOPICS.ticks.name,
          trades.slice(i, i + 2_000).map((t) => ({ key: t.symbol, value: encodeTick(t) })),
        );
      }
      await waitUntil('all consumed', () => consumed >= THROUGHPUT_TRADES, BENCH_WAIT_MS);
      const seconds = (performance.now() - started) / 1_000;
      rows.push({
        measure: 'baseline: broker only (kafkajs produce + consume)',
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
    'baseline: the same trades into the database only (insertTrades, 2,000 a batch)',
    async () => {
      const { broker, db } = await environment();
      cleanups.push(
        () => broker.stop(),
        () => db.drop(),
      );
      const trades = await syntheticTrades(THROUGHPUT_TRADES, 3);
      const repository = new Repository({ url: db.url, logger });
      const started = performance.now();
      for (let i = 0; i < trades.length; i += 2_000)
        await repository.insertTrades(trades.slice(i, i + 2_000));
      const seconds = (performance.now() - started) / 1_000;
      rows.push({
        measure: 'baseline: database only (insertTrades)',
        trades: THROUGHPUT_TRADES,
        seconds: +seconds.toFixed(2),
        'trades/s': Math.round(THROUGHPUT_TRADES / seconds),
      });
      await repository.close();
    },
    ONCE,
  );

  bench(
    `latency: trade published → its bar-updates message (${LATENCY_SAMPLES} trades, one every ${LATENCY_GAP_MS} ms)`,
    async () => {
      const { broker, db, brokers, env } = await environment();
      cleanups.push(
        () => broker.stop(),
        () => db.drop(),
      );
      const consumer = await startFixedConsumer(loadFixedConsumerConfig(env), logger);
      await waitUntil(
        'the consumer',
        () => consumer.state() === 'consuming.healthy',
        BENCH_WAIT_MS,
      );
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
      await listener.start((batch: ConsumedBatch) => {
        const now = Date.now();
        for (const m of batch.messages) {
          const publishedAt = m.headers[PUBLISHED_AT_HEADER];
          // One sample per trade batch: the first update that carries its publication time.
          if (publishedAt && !seen.has(publishedAt)) {
            seen.add(publishedAt);
            latencies.push(now - Number(publishedAt));
          }
        }
        return Promise.resolve();
      });
      await new Promise((r) => setTimeout(r, 1_500)); // the listener's group join settles
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
        await new Promise((r) => setTimeout(r, LATENCY_GAP_MS));
      }
      await waitUntil('the bar updates', () => latencies.length >= LATENCY_SAMPLES * 0.9, 30_000);
      latencies.sort((a, b) => a - b);
      rows.push({
        measure: 'latency: trade published → bar-updates received',
        samples: latencies.length,
        'p50 ms': percentile(latencies, 50),
        'p99 ms': percentile(latencies, 99),
      });
      await listener.stop();
      await publisher.disconnect();
      await consumer.stop();
    },
    ONCE,
  );

  bench(
    'baseline latency: a message published → a consumer of the same broker receives it',
    async () => {
      const { broker, db, brokers } = await environment();
      cleanups.push(
        () => broker.stop(),
        () => db.drop(),
      );
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
});
