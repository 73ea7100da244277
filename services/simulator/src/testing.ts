/**
 * What the simulator's integration and end-to-end tests share: a real broker and a real
 * PostgreSQL with stored history, `pnpm replay` as a process, and a kafkajs reader of what it
 * published.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import { spawnBrokerProcess } from '@candlestream/broker/testing';
import type { MarketSymbol, Tick } from '@candlestream/core';
import { decodeTick } from '@candlestream/core';
import { migrate, Repository } from '@candlestream/db';
import type { KafkaClient } from '@candlestream/kafka';
import { createKafka, TopicCollector } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess, TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, spawnService, waitUntil } from '@candlestream/testkit';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const REPLAY_SCRIPT = join(ROOT, 'scripts', 'replay.ts');
export const BTC = 'BTC-USD' as MarketSymbol;
export const ETH = 'ETH-USD' as MarketSymbol;

export interface Infra {
  /** `host:port` of the broker. */
  brokers: string;
  db: TestDatabase;
  repository: Repository;
  kafka: KafkaClient;
  close(): Promise<void>;
}

/**
 * The broker in this process, or (`brokerProcess`) as its own process, as `pnpm start` runs it:
 * a benchmark then measures the replay, not the broker sharing its thread.
 */
export async function startInfra(
  postgresUrl: string,
  name: string,
  options: { brokerProcess?: boolean } = {},
): Promise<Infra> {
  const dataDir = await mkdtemp(join(tmpdir(), `cs-${name}-`));
  const broker = options.brokerProcess
    ? await brokerProcess(dataDir)
    : await startBroker({ port: 0, dataDir });
  const db = await createTestDatabase(postgresUrl, name);
  await migrate({ url: db.url }, { logger: silentLogger() });
  const repository = new Repository({ url: db.url, logger: silentLogger() });
  const kafka = createKafka({
    brokers: [broker.brokers],
    clientId: 'test',
    logger: silentLogger(),
  });
  return {
    brokers: broker.brokers,
    db,
    repository,
    kafka,
    close: async () => {
      await repository.close();
      await broker.stop();
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function brokerProcess(dataDir: string): Promise<Pick<RunningBroker, 'brokers' | 'stop'>> {
  const p = await spawnBrokerProcess(['--data-dir', dataDir], 60_000);
  return {
    brokers: p.brokers,
    stop: async () => {
      p.child.kill('SIGTERM');
      await p.exited;
    },
  };
}

/** `pnpm replay` with these arguments, against the infra. */
export function replayProcess(infra: Infra, args: readonly string[]): ServiceProcess {
  return spawnService(
    REPLAY_SCRIPT,
    { KAFKA_BROKERS: infra.brokers, DATABASE_URL: infra.db.url, LOG_LEVEL: 'info' },
    args,
  );
}

/** A replayed message: the trade and the record's (produce) timestamp. */
export interface Received {
  tick: Tick;
  at: number;
}

/** Everything on `topic` from the beginning, as it arrives, decoded (a throwaway group). */
export class TopicReader {
  readonly #collector: TopicCollector;

  private constructor(collector: TopicCollector) {
    this.#collector = collector;
  }

  static async start(kafka: KafkaClient, topic: string): Promise<TopicReader> {
    const collector = new TopicCollector(kafka, topic, { fromBeginning: true, maxWaitTimeMs: 100 });
    await collector.start();
    return new TopicReader(collector);
  }

  /** The trades so far, each with its record's (produce) timestamp. */
  get received(): Received[] {
    return this.#collector.messages.map((message) => {
      const decoded = decodeTick(message.value ?? '');
      if (!decoded.ok) throw new Error(`not a tick on ${message.topic}: ${decoded.reason}`);
      return { tick: decoded.value, at: message.timestamp };
    });
  }

  get ticks(): Tick[] {
    return this.received.map((r) => r.tick);
  }

  async waitFor(count: number, timeoutMs = 60_000): Promise<void> {
    await waitUntil(
      `${String(count)} replayed messages (have ${String(this.#collector.messages.length)})`,
      () => this.#collector.messages.length >= count,
      timeoutMs,
    );
  }

  stop(): Promise<void> {
    return this.#collector.stop();
  }
}

/** The `replay ended` line's figures. */
export async function ended(
  p: ServiceProcess,
  timeoutMs = 120_000,
): Promise<Record<string, unknown>> {
  return p.waitForLine((l) => l['msg'] === 'replay ended', timeoutMs);
}
