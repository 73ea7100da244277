import type { Clock, Tick } from '@candlestream/core';
import { encodeTick, systemClock } from '@candlestream/core';
import type { TopicSpec } from '@candlestream/kafka';
import { BatchingPublisher, createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { MachineService } from '@candlestream/runtime';
import { Feed, Metrics, PendingStops, startMachineService } from '@candlestream/runtime';
import type { BackfillDeps } from './actors/backfill.js';
import { backfillActor } from './actors/backfill.js';
import { connectActor } from './actors/connect.js';
import type { BrokerHealth, Deps } from './actors/deps.js';
import { drainActor, shutdownActor } from './actors/shutdown.js';
import { streamActor } from './actors/stream.js';
import type { ProducerConfig } from './config.js';
import { producerMachine } from './producer.machine.js';
import type { BackfillFetcher, NoBackfill } from './sources/backfill-fetchers.js';
import { createBackfillFetcher } from './sources/backfill-fetchers.js';
import { createSource } from './sources/index.js';
import type { TradeSource } from './sources/source.js';

export const SERVICE_NAME = 'producer';
/** Trades held while the broker is slow or away; beyond it the source waits (backpressure). */
export const MAX_BUFFERED_TRADES = 200_000;
export const MAX_BATCH_TRADES = 2_000;
export const LINGER_MS = 5;
export const DRAIN_TIMEOUT_MS = 10_000;

export interface ProducerOverrides {
  clock?: Clock;
  source?: TradeSource;
  topic?: TopicSpec;
  /** Where backfills fetch from; default the configured source's fetcher. */
  backfillFetcher?: BackfillFetcher | NoBackfill;
  /** The backfill topics (tests give random names): commands and status. */
  backfillTopics?: { commands: TopicSpec; status: TopicSpec };
}

/**
 * The kernel's running service (state, health, stop; `done` also when a finite source ran out),
 * its port named `opsPort`.
 */
export interface Producer extends Omit<MachineService, 'port'> {
  readonly opsPort: number;
  readonly metrics: Metrics;
  stats(): { received: number; published: number; buffered: number };
}

export async function startProducer(
  config: ProducerConfig,
  logger: Logger,
  overrides: ProducerOverrides = {},
): Promise<Producer> {
  const clock = overrides.clock ?? systemClock;
  const metrics = new Metrics('producer');
  const topic = overrides.topic ?? TOPICS.ticks;
  const kafka = createKafka({ brokers: config.kafkaBrokers, clientId: SERVICE_NAME, logger });
  const publisher = new KafkaPublisher(kafka);
  const published = metrics.counter('trades_published_total', 'trades acknowledged by the broker');
  const failures = metrics.counter('publish_failures_total', 'failed publish attempts (retried)');
  const source = overrides.source ?? createSource(config, logger, clock);
  const log = logger.child({ component: 'publisher' });
  // The buffer's health reaches the machine through the stream actor, which subscribes to it.
  const brokerHealth = new Feed<BrokerHealth>();
  const buffer = new BatchingPublisher<Tick>({
    maxBatchItems: MAX_BATCH_TRADES,
    maxBufferedItems: MAX_BUFFERED_TRADES,
    lingerMs: LINGER_MS,
    clock,
    send: async (batch) => {
      const started = Date.now();
      await publisher.send(
        topic.name,
        batch.map((t) => ({ key: t.symbol, value: encodeTick(t) })),
      );
      published.inc(batch.length);
      log.debug('batch published', { trades: batch.length, durationMs: Date.now() - started });
    },
    onHealth: (h) => {
      if (h.ok) {
        log.info('broker accepting trades again');
        brokerHealth.publish({ ok: true });
      } else {
        failures.inc();
        const problem = h.error instanceof Error ? h.error.message : String(h.error);
        log.warn('publish failed; retrying', {
          err: problem,
          retryInMs: h.retryInMs,
          buffered: buffer.stats.buffered,
        });
        brokerHealth.publish({ ok: false, problem });
      }
    },
  });
  metrics.gauge('buffered_trades', 'trades waiting for the broker', () => buffer.stats.buffered);
  const deps: Deps = {
    kafka,
    publisher,
    buffer,
    source,
    topic,
    logger,
    newest: new Map(),
    received: metrics.counter('trades_received_total', 'trades read from the source'),
    brokerHealth,
    lastSourceStatus: undefined,
    maxRate: config.maxRate,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    clock,
  };
  const backfillDeps: BackfillDeps = {
    kafka,
    // Its own publisher: the region connects it when it starts, whatever the live region does.
    publisher: new KafkaPublisher(kafka),
    fetcher: overrides.backfillFetcher ?? createBackfillFetcher(config, logger, clock),
    groupId: config.backfillGroupId,
    commandsTopic: overrides.backfillTopics?.commands ?? TOPICS.backfillCommands,
    statusTopic: overrides.backfillTopics?.status ?? TOPICS.backfillStatus,
    logger,
    clock,
    stops: new PendingStops(),
    candlesWritten: metrics.counter(
      'backfill_candles_written_total',
      'candles written to job topics',
    ),
    jobsFinished: metrics.counter(
      'backfill_jobs_total',
      'backfill jobs whose fetch ended, by outcome',
      {
        labels: ['outcome'],
      },
    ),
  };
  const service = await startMachineService({
    name: SERVICE_NAME,
    machine: producerMachine.provide({
      actors: {
        connect: connectActor(deps),
        backfill: backfillActor(backfillDeps),
        stream: streamActor(deps),
        drain: drainActor(deps),
        shutdown: shutdownActor(deps),
      },
    }),
    logger,
    metrics,
    // The machine's delays (backoff, resets) run on the service's clock, like every other timer.
    clock,
    ops: { port: config.healthPort, portVariable: 'HEALTH_PORT', host: config.host },
    checks: () => ({
      source: source.kind,
      sourceStatus: deps.lastSourceStatus?.state ?? 'starting',
      buffered: buffer.stats.buffered,
      backfillSource: backfillDeps.fetcher.kind,
    }),
    // The buffer drains in the machine's stopping state; the broker connection closes after it.
    resources: [
      { name: 'publisher', close: () => publisher.disconnect() },
      { name: 'buffer', close: () => buffer.close({ drain: false }) },
      // The backfill consumer leaves its group (and its publisher disconnects) when its actor stops.
      { name: 'backfill', close: () => backfillDeps.stops.settled() },
    ],
  });
  // A finite source that ran out is a normal end: one summary line, then the process exits 0
  // (runService), which `pnpm start` treats as normal too (docs/RUNNING.md).
  const startedAt = Date.now();
  void service.done.then(
    () => {
      if (!service.state().split(',').includes('live.done')) return;
      logger.child({ component: 'source' }).info('source finished', {
        source: source.kind,
        published: published.get(),
        durationMs: Date.now() - startedAt,
      });
    },
    () => undefined,
  );
  return {
    opsPort: service.port,
    metrics,
    state: service.state,
    health: service.health,
    stats: () => ({
      received: deps.received.get(),
      published: published.get(),
      buffered: buffer.stats.buffered,
    }),
    done: service.done,
    stop: service.stop,
  };
}
