import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { silentLogger, type Logger } from '@candlestream/logger';
import type { BrokerContext } from './apis/types.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { GroupCoordinator } from './groups/group-coordinator.js';
import { OffsetStore } from './groups/offset-store.js';
import { listen } from './server.js';
import { TopicStore } from './storage/topic-store.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const MIB = 1024 * 1024;

/** Kafka's defaults where they suit a dev broker; retention.bytes is capped so memory stays bounded. */
export const DEFAULT_RETENTION_MS = 7 * 24 * HOUR_MS;
export const DEFAULT_RETENTION_BYTES = 256 * MIB;
export const DEFAULT_SEGMENT_BYTES = 16 * MIB;
export const DEFAULT_SEGMENT_MS = HOUR_MS;
/** message.max.bytes (Kafka default 1 MiB + 12 bytes of log overhead). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/**
 * Durability (docs/BROKER.md, "What an acknowledgement promises"): every produce is written to
 * its segment file (page cache) before it is acknowledged, and offset commits are appended to
 * consumer-offsets.jsonl before theirs. Both are fdatasync'd every FLUSH_INTERVAL_MS, segments
 * also on roll, and everything on stop. A process kill loses nothing acknowledged; a machine
 * crash can lose up to this much.
 */
export const FLUSH_INTERVAL_MS = 1000;
export const RETENTION_CHECK_INTERVAL_MS = 30_000;

export interface BrokerOptions {
  /** 0 picks a free port. Default 9092. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  /** Host put in Metadata; default `host`, or 127.0.0.1 when listening on all interfaces. */
  advertisedHost?: string;
  /** Keep topics, records and committed offsets here; without it everything is in memory. */
  dataDir?: string;
  logger?: Logger;
  /** auto.create.topics.enable: off by default because the platform creates its topics. */
  allowAutoTopicCreation?: boolean;
  /** num.partitions for topics created without a count. Default 1. */
  defaultPartitions?: number;
  retentionMs?: number;
  retentionBytes?: number;
  segmentBytes?: number;
  segmentMs?: number;
  maxMessageBytes?: number;
  /** group.initial.rebalance.delay.ms; default 300 (Kafka: 3000) so tests and dev start fast. */
  groupInitialRebalanceDelayMs?: number;
  groupMinSessionTimeoutMs?: number;
  groupMaxSessionTimeoutMs?: number;
  clock?: Clock;
}

export interface RunningBroker {
  host: string;
  port: number;
  /** `host:port`, ready for KAFKA_BROKERS or a client's `brokers` list. */
  brokers: string;
  dataDir: string | null;
  /** Closes every connection and the listener and flushes storage. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startBroker(options: BrokerOptions = {}): Promise<RunningBroker> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger ?? silentLogger();
  const clock = options.clock ?? systemClock;
  const dataDir = options.dataDir ?? null;
  if (dataDir !== null) mkdirSync(dataDir, { recursive: true });

  const topics = TopicStore.open(
    dataDir,
    {
      numPartitions: options.defaultPartitions ?? 1,
      retentionMs: options.retentionMs ?? DEFAULT_RETENTION_MS,
      retentionBytes: options.retentionBytes ?? DEFAULT_RETENTION_BYTES,
      segmentBytes: options.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
      segmentMs: options.segmentMs ?? DEFAULT_SEGMENT_MS,
    },
    () => clock.now(),
    logger.child({ component: 'storage' }),
  );
  const offsets = OffsetStore.open(dataDir, logger.child({ component: 'offsets' }));
  const groups = new GroupCoordinator({
    clock,
    offsets,
    minSessionTimeoutMs: options.groupMinSessionTimeoutMs ?? 6000,
    maxSessionTimeoutMs: options.groupMaxSessionTimeoutMs ?? 30 * MINUTE_MS,
    initialRebalanceDelayMs: options.groupInitialRebalanceDelayMs ?? 300,
  });
  // Producer ids only need to be unique per broker lifetime; seeding from the clock keeps them
  // from repeating across restarts.
  let producerId = clock.now();
  const ctx: BrokerContext = {
    nodeId: 0,
    advertisedHost:
      options.advertisedHost ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host),
    advertisedPort: options.port ?? 9092,
    clusterId: `candlestream-${randomUUID()}`,
    topics,
    groups,
    offsets,
    clock,
    logger: logger.child({ component: 'broker' }),
    allowAutoTopicCreation: options.allowAutoTopicCreation ?? false,
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    nextProducerId: () => producerId++,
  };

  const timers: { flush: Timer | null; retention: Timer | null } = { flush: null, retention: null };
  const scheduleFlush = (): void => {
    timers.flush = clock.setTimer(() => {
      topics.flush();
      offsets.flush();
      scheduleFlush();
    }, FLUSH_INTERVAL_MS);
  };
  const scheduleRetention = (): void => {
    timers.retention = clock.setTimer(() => {
      topics.enforceRetention();
      scheduleRetention();
    }, RETENTION_CHECK_INTERVAL_MS);
  };
  if (dataDir !== null) scheduleFlush();
  scheduleRetention();

  let server;
  try {
    server = await listen(
      ctx,
      host,
      options.port ?? 9092,
      ctx.logger.child({ component: 'server' }),
      (port) => {
        ctx.advertisedPort = port;
      },
    );
  } catch (err) {
    timers.flush?.cancel();
    timers.retention?.cancel();
    topics.close();
    offsets.close();
    throw err;
  }
  const listening = server;
  ctx.logger.info('broker listening', {
    brokers: `${ctx.advertisedHost}:${listening.port}`,
    host,
    port: listening.port,
    dataDir,
    topics: topics.list().length,
  });

  let stopping: Promise<void> | null = null;
  return {
    host: ctx.advertisedHost,
    port: listening.port,
    brokers: `${ctx.advertisedHost}:${listening.port}`,
    dataDir,
    stop: () => {
      stopping ??= (async () => {
        timers.flush?.cancel();
        timers.retention?.cancel();
        await listening.close();
        groups.close();
        topics.close();
        offsets.close();
        ctx.logger.info('broker stopped', { port: listening.port });
      })();
      return stopping;
    },
  };
}
