/**
 * A dynamic consumer against the embedded broker and a real PostgreSQL, for the int tests: its
 * own topics, group and database, and what a test needs to play the coordinator and the producer
 * (a job's topic, its records, the command) and to read what came out (reports, finals, dead
 * letters, stored minutes, committed offsets). Only tests import this.
 */
import { randomUUID } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type {
  BackfillCommand,
  BackfillRecord,
  BackfillReport,
  Bar,
  BarUpdate,
  MarketSymbol,
  TimeRange,
} from '@candlestream/core';
import {
  BACKFILL_MESSAGE_VERSION,
  backfillTopicName,
  candleRecord,
  decodeBackfillReport,
  decodeBarUpdate,
  encodeBackfillMessage,
  MINUTE_MS,
} from '@candlestream/core';
import { migrate } from '@candlestream/db';
import type { KafkaClient, OutgoingMessage, TopicSpec } from '@candlestream/kafka';
import {
  backfillTopic,
  createKafka,
  ensureTopics,
  KafkaPublisher,
  TopicCollector,
} from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import type { TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, uniqueName } from '@candlestream/testkit';
import pg from 'pg';
import { loadDynamicConsumerConfig } from './config.js';
import type { DynamicConsumer, DynamicConsumerOverrides } from './service.js';
import { startDynamicConsumer } from './service.js';

export const BTC = 'BTC-USD' as MarketSymbol;
/** A Monday 10:00 UTC well in the past: every bucket a test writes is closed. */
export const T0 = Date.UTC(2025, 0, 6, 10);

export type Topics = Record<'commands' | 'status' | 'barUpdates' | 'dlq', TopicSpec>;

export interface Fixture {
  brokers: string;
  broker: RunningBroker;
  kafka: KafkaClient;
  publisher: KafkaPublisher;
  db: TestDatabase;
  pool: pg.Pool;
  topics: Topics;
  groupId: string;
  status: TopicCollector;
  barUpdates: TopicCollector;
  dlq: TopicCollector;
  close(): Promise<void>;
}

/** A broker, a migrated database and collectors on the outputs; `topics` default to unique names. */
export async function startInfra(
  postgresUrl: string,
  options: { topics?: Topics; brokerDataDir?: string } = {},
): Promise<Fixture> {
  const broker = await startBroker({
    port: 0,
    ...(options.brokerDataDir ? { dataDir: options.brokerDataDir } : {}),
  });
  const db = await createTestDatabase(postgresUrl, 'dynamic');
  await migrate({ url: db.url }, { logger: silentLogger() });
  const kafka = createKafka({
    brokers: [broker.brokers],
    clientId: 'test',
    logger: silentLogger(),
  });
  const topics: Topics = options.topics ?? {
    commands: { name: uniqueName('commands'), partitions: 2 },
    status: { name: uniqueName('status'), partitions: 2 },
    barUpdates: { name: uniqueName('bars'), partitions: 2 },
    dlq: { name: uniqueName('dlq'), partitions: 1 },
  };
  await ensureTopics(kafka, Object.values(topics));
  const publisher = new KafkaPublisher(kafka);
  await publisher.connect();
  const status = new TopicCollector(kafka, topics.status.name);
  const barUpdates = new TopicCollector(kafka, topics.barUpdates.name);
  const dlq = new TopicCollector(kafka, topics.dlq.name);
  await Promise.all([status.start(), barUpdates.start(), dlq.start()]);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  return {
    brokers: broker.brokers,
    broker,
    kafka,
    publisher,
    db,
    pool,
    topics,
    groupId: uniqueName('dynamic'),
    status,
    barUpdates,
    dlq,
    close: async () => {
      await Promise.all([status.stop(), barUpdates.stop(), dlq.stop()]);
      await publisher.disconnect();
      await pool.end();
      await broker.stop().catch(() => undefined);
      await db.drop();
    },
  };
}

/** The service as main.ts starts it, on the fixture's topics and group. */
export function startService(
  f: Fixture,
  overrides: DynamicConsumerOverrides = {},
  databaseUrl = f.db.url,
): Promise<DynamicConsumer> {
  const config = loadDynamicConsumerConfig({
    KAFKA_BROKERS: f.brokers,
    DATABASE_URL: databaseUrl,
    HEALTH_PORT: '0',
    DYNAMIC_CONSUMER_GROUP: f.groupId,
  });
  return startDynamicConsumer(config, silentLogger(), { topics: f.topics, ...overrides });
}

/** `count` candles of one minute each from `from`, a gentle walk around 40,000. */
export function candles(from: number, count: number, seed = 1): Bar[] {
  return Array.from({ length: count }, (_, i) => {
    const open = 40_000 + seed * 10 + i;
    const close = open + ((i % 3) - 1) * 2.5;
    return {
      time: from + i * MINUTE_MS,
      open,
      high: Math.max(open, close) + 4,
      low: Math.min(open, close) - 3,
      close,
      volume: 1.5 + (i % 7) * 0.25,
    };
  });
}

/** A job as the coordinator makes it: its topic created, and the command it would send. */
export async function createJob(
  f: Fixture,
  ranges: TimeRange[],
  symbol: MarketSymbol = BTC,
): Promise<BackfillCommand> {
  const id = randomUUID();
  const topic = backfillTopicName(symbol, id);
  await ensureTopics(f.kafka, [backfillTopic(topic)]);
  return { v: BACKFILL_MESSAGE_VERSION, id, symbol, topic, ranges };
}

export function sendCommand(f: Fixture, command: BackfillCommand): Promise<void> {
  return f.publisher.send(f.topics.commands.name, [
    { key: command.id, value: encodeBackfillMessage(command) },
  ]);
}

/** Writes records to the job's topic as the producer does; strings go as raw bytes. */
export function writeRecords(
  f: Fixture,
  command: BackfillCommand,
  records: readonly (BackfillRecord | string)[],
): Promise<void> {
  const messages: OutgoingMessage[] = records.map((r) => ({
    key: command.symbol,
    value: typeof r === 'string' ? r : encodeBackfillMessage(r),
  }));
  return f.publisher.send(command.topic, messages);
}

export function candleRecords(symbol: MarketSymbol, bars: readonly Bar[]): BackfillRecord[] {
  return bars.map((b) => candleRecord(symbol, b));
}

export function endRecord(
  command: BackfillCommand,
  count: number,
  unavailable: Extract<BackfillRecord, { type: 'end' }>['unavailable'] = [],
): BackfillRecord {
  return { v: BACKFILL_MESSAGE_VERSION, type: 'end', id: command.id, candles: count, unavailable };
}

/** The dynamic consumer's reports on one job, in the order it sent them. */
export function reportsOf(f: Fixture, id: string): BackfillReport[] {
  return f.status.messages
    .map((m) => decodeBackfillReport(m.value ?? ''))
    .flatMap((d) => (d.ok ? [d.value] : []))
    .filter((r) => r.id === id && r.reporter === 'dynamic-consumer');
}

export function finals(f: Fixture): BarUpdate[] {
  return f.barUpdates.messages
    .map((m) => decodeBarUpdate(m.value ?? ''))
    .flatMap((d) => (d.ok ? [d.value] : []));
}

export interface StoredMinute extends Bar {
  origin: string;
  source: string | null;
}

/** bars_1m of `symbol`, ascending. */
export async function storedMinutes(
  f: Fixture,
  symbol: MarketSymbol = BTC,
): Promise<StoredMinute[]> {
  const { rows } = await f.pool.query<StoredMinute>(
    `SELECT (extract(epoch FROM bucket) * 1000)::float8 AS time, open, high, low, close, volume,
            origin, source
     FROM bars_1m WHERE symbol = $1 ORDER BY bucket`,
    [symbol],
  );
  return rows;
}

/** How many records of `topic` the group has committed, over all its partitions. */
export async function committedRecords(
  kafka: KafkaClient,
  groupId: string,
  topic: string,
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return (offsets?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } finally {
    await admin.disconnect();
  }
}

/** The bar in `bars` that opens at `time`. */
export function at<T extends Bar>(bars: readonly T[], time: number): T | undefined {
  return bars.find((b) => b.time === time);
}

/** A TCP proxy to a database that a test can cut off (every connection reset) and restore. */
export interface CuttableProxy {
  /** `url` with its host and port pointed at the proxy. */
  via(url: string): string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startCuttableProxy(targetUrl: string): Promise<CuttableProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let cut = false;
  const server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    via: (url) => {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut: () => {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore: () => {
      cut = false;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
