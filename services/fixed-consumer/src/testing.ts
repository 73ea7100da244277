/**
 * A fixed consumer in this process against the embedded broker and a real PostgreSQL, for the
 * int tests: its own topics, group and database, and what they need to ask the broker (offsets,
 * lag) and storage (stored trades). Only tests import this.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import { MemoryLiveBarStore } from '@candlestream/cache';
import { migrate } from '@candlestream/db';
import type { KafkaClient, TopicSpec } from '@candlestream/kafka';
import { createKafka, ensureTopics } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess, TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, spawnService, uniqueName } from '@candlestream/testkit';
import pg from 'pg';
import { loadFixedConsumerConfig } from './config.js';
import type { FixedConsumer, FixedConsumerOverrides } from './service.js';
import { startFixedConsumer } from './service.js';

const BROKER_MAIN = fileURLToPath(new URL('../../../packages/broker/src/main.ts', import.meta.url));

/** The embedded broker as its own process (`pnpm broker`), so a test can kill it for real. */
export async function spawnBroker(): Promise<{ brokers: string; process: ServiceProcess }> {
  const child = spawnService(BROKER_MAIN, { LOG_LEVEL: 'info' }, ['--port', '0']);
  const line = await child.waitForLine((l) => l['msg'] === 'broker listening');
  return { brokers: `127.0.0.1:${String(line['port'])}`, process: child };
}

export interface ConsumerFixture {
  /** `host:port` of the broker. */
  brokers: string;
  /** The in-process broker, unless the fixture was given a broker's address. */
  broker: RunningBroker | undefined;
  kafka: KafkaClient;
  db: TestDatabase;
  pool: pg.Pool;
  topics: { ticks: TopicSpec; dlq: TopicSpec; barUpdates: TopicSpec };
  groupId: string;
  close(): Promise<void>;
}

export async function startInfra(
  postgresUrl: string,
  options: { partitions?: number; brokers?: string } = {},
): Promise<ConsumerFixture> {
  const partitions = options.partitions ?? 2;
  const broker = options.brokers === undefined ? await startBroker({ port: 0 }) : undefined;
  const brokers = options.brokers ?? broker!.brokers;
  const db = await createTestDatabase(postgresUrl, 'consumer');
  await migrate({ url: db.url }, { logger: silentLogger() });
  const kafka = createKafka({
    brokers: [brokers],
    clientId: 'test',
    logger: silentLogger(),
  });
  const topics = {
    ticks: { name: uniqueName('ticks'), partitions },
    dlq: { name: uniqueName('dlq'), partitions: 1 },
    barUpdates: { name: uniqueName('bars'), partitions },
  };
  await ensureTopics(kafka, Object.values(topics));
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  return {
    brokers,
    broker,
    kafka,
    db,
    pool,
    topics,
    groupId: uniqueName('fixed'),
    close: async () => {
      await pool.end();
      await broker?.stop().catch(() => undefined);
      await db.drop();
    },
  };
}

/** The same broker and database with new topics and a new group: one test's own pipeline. */
export async function withNewTopics(f: ConsumerFixture): Promise<ConsumerFixture> {
  const topics = {
    ticks: { ...f.topics.ticks, name: uniqueName('ticks') },
    dlq: { ...f.topics.dlq, name: uniqueName('dlq') },
    barUpdates: { ...f.topics.barUpdates, name: uniqueName('bars') },
  };
  await ensureTopics(f.kafka, Object.values(topics));
  return { ...f, topics, groupId: uniqueName('fixed') };
}

/** The service as main.ts starts it, on the fixture's topics and group. */
export function startConsumer(
  f: ConsumerFixture,
  databaseUrl = f.db.url,
  overrides: FixedConsumerOverrides = {},
): Promise<FixedConsumer> {
  const config = loadFixedConsumerConfig({
    KAFKA_BROKERS: f.brokers,
    DATABASE_URL: databaseUrl,
    HEALTH_PORT: '0',
    CONSUMER_GROUP: f.groupId,
  });
  return startFixedConsumer(config, silentLogger(), {
    topics: f.topics,
    liveStore: new MemoryLiveBarStore(),
    ...overrides,
  });
}

/** End offsets of `topic` per partition, as the broker has them. */
export async function endOffsets(kafka: KafkaClient, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** How many messages `topic` holds (all partitions; nothing is deleted in these tests). */
export async function messageCount(kafka: KafkaClient, topic: string): Promise<number> {
  let n = 0n;
  for (const high of (await endOffsets(kafka, topic)).values()) n += high;
  return Number(n);
}

/** The group's lag per partition from the broker: end offset minus committed (none: from 0). */
export async function brokerLag(
  kafka: KafkaClient,
  groupId: string,
  topic: string,
): Promise<Map<number, number>> {
  const ends = await endOffsets(kafka, topic);
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [group] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const lag = new Map<number, number>();
    for (const [partition, high] of ends) {
      const offset = BigInt(group?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
      lag.set(partition, Number(high - (offset < 0n ? 0n : offset)));
    }
    return lag;
  } finally {
    await admin.disconnect();
  }
}

export async function totalLag(f: ConsumerFixture): Promise<number> {
  let n = 0;
  for (const lag of (await brokerLag(f.kafka, f.groupId, f.topics.ticks.name)).values()) n += lag;
  return n;
}

export async function storedTrades(f: ConsumerFixture, symbol?: string): Promise<number> {
  const { rows } = await f.pool.query<{ n: number }>(
    symbol === undefined
      ? 'SELECT count(*)::int AS n FROM ticks'
      : 'SELECT count(*)::int AS n FROM ticks WHERE symbol = $1',
    symbol === undefined ? [] : [symbol],
  );
  return rows[0]!.n;
}

/** `consumer_lag_messages` per partition, as /metrics answers it. */
export async function scrapedLag(consumer: FixedConsumer): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${consumer.opsPort}/metrics`)).text();
  const lag = new Map<number, number>();
  for (const m of text.matchAll(
    /^candlestream_fixed_consumer_consumer_lag_messages\{partition="(\d+)"\} (\d+)$/gm,
  )) {
    lag.set(Number(m[1]), Number(m[2]));
  }
  return lag;
}

/**
 * A TCP proxy that can be frozen: it stops forwarding bytes (and closes) in both directions
 * without closing any socket, as a network that drops packets does; unfreezing delivers what was
 * held, in order. Between a client and PostgreSQL it makes a database that goes silent.
 */
export interface FreezableProxy {
  readonly port: number;
  freeze(): void;
  unfreeze(): void;
  close(): Promise<void>;
}

export async function startFreezableProxy(target: {
  host: string;
  port: number;
}): Promise<FreezableProxy> {
  let frozen = false;
  let held: (() => void)[] = [];
  const pass = (action: () => void): void => {
    if (frozen) held.push(action);
    else action();
  };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    const pipe = (from: Socket, to: Socket): void => {
      from.on('data', (chunk) => pass(() => to.write(chunk)));
      from.on('end', () => pass(() => to.end()));
      from.on('close', () => pass(() => to.destroy()));
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    freeze: () => {
      frozen = true;
    },
    unfreeze: () => {
      frozen = false;
      const actions = held;
      held = [];
      for (const action of actions) action();
    },
    close: async () => {
      frozen = false;
      held = [];
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `url` with its host and port replaced: a database URL through the proxy. */
export function viaProxy(url: string, proxy: FreezableProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}
