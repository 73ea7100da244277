import type { Logger } from '@candlestream/logger';
import kafkajs from 'kafkajs';
import type { Admin, Kafka, logCreator as LogCreator } from 'kafkajs';
import type { TopicSpec } from './topics.js';
import './codecs.js'; // snappy, lz4 and zstd for kafkajs (it ships gzip only)

const { Kafka: KafkaClass, logLevel: LogLevel, Partitioners } = kafkajs;

export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  logger: Logger;
  /** Per-request retries inside kafkajs before an error reaches us; services retry on top. */
  retries?: number;
  connectionTimeoutMs?: number;
}

/**
 * kafkajs writes its own log lines; this routes them into our logger as JSON lines with the
 * kafkajs namespace, so there is one log format (STYLE: logs through kafkajs' logCreator).
 */
function routeLogs(logger: Logger): LogCreator {
  const log = logger.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log: entry }) => {
      const { message, timestamp: _ts, logger: _name, ...fields } = entry;
      const line = String(message);
      const extra = { namespace, ...fields };
      if (level === LogLevel.ERROR) log.error(line, extra);
      else if (level === LogLevel.WARN) log.warn(line, extra);
      else log.debug(line, extra);
    };
}

/** A kafkajs client; the rest of the platform sees only this package's wrappers. */
export function createKafka(options: KafkaOptions): Kafka {
  return new KafkaClass({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: LogLevel.INFO,
    logCreator: routeLogs(options.logger),
    connectionTimeout: options.connectionTimeoutMs ?? 3_000,
    retry: { retries: options.retries ?? 5, initialRetryTime: 200, maxRetryTime: 5_000 },
  });
}

/** The client type, under our name, so services need not import kafkajs. */
export type KafkaClient = Kafka;

export const defaultPartitioner = Partitioners.DefaultPartitioner;

/** Creates the topics that do not exist yet; existing ones are left as they are. */
export async function ensureTopics(kafka: Kafka, topics: readonly TopicSpec[]): Promise<string[]> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((t) => ({
          topic: t.name,
          numPartitions: t.partitions,
          replicationFactor: t.replicationFactor ?? 1,
          configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    }
    return missing.map((t) => t.name);
  } finally {
    await admin.disconnect();
  }
}

/** Deletes these topics; ones already gone are not an error. Returns the names it deleted. */
/** The names of every topic on the broker. */
export async function listTopics(kafka: Kafka): Promise<string[]> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  try {
    return await admin.listTopics();
  } finally {
    await admin.disconnect();
  }
}

export async function deleteTopics(kafka: Kafka, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const admin: Admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = names.filter((n) => existing.has(n));
    if (present.length > 0) await admin.deleteTopics({ topics: present });
    return present;
  } finally {
    await admin.disconnect();
  }
}
