import type { LiveBarStore } from '@candlestream/cache';
import { createLiveBarStore } from '@candlestream/cache';
import type { Clock } from '@candlestream/core';
import { systemClock } from '@candlestream/core';
import type { DbTimeouts } from '@candlestream/db';
import { Repository } from '@candlestream/db';
import type { TopicSpec } from '@candlestream/kafka';
import { ConsumerLagReader, createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { MachineService } from '@candlestream/runtime';
import { Feed, Metrics, PendingStops, startMachineService } from '@candlestream/runtime';
import { connectActor, restoreActor } from './actors/connect.js';
import { consumeActor } from './actors/consume.js';
import type { DependencyHealth, Deps } from './actors/deps.js';
import { shutdownActor } from './actors/shutdown.js';
import type { FixedConsumerConfig } from './config.js';
import { fixedConsumerMachine } from './fixed-consumer.machine.js';
import { Pipeline } from './pipeline.js';

export const SERVICE_NAME = 'fixed-consumer';
/** How often quiet symbols' bars are closed on the clock. */
export const CLOCK_TICK_MS = 1_000;

export interface FixedConsumerOverrides {
  clock?: Clock;
  /** Database schema (tests isolate by schema). */
  schema?: string;
  topics?: Partial<Deps['topics']>;
  liveStore?: LiveBarStore;
  tickIntervalMs?: number;
  /** Database timeouts (packages/db DEFAULT_DB_TIMEOUTS otherwise). */
  dbTimeouts?: Partial<DbTimeouts>;
  /** See packages/runtime STALLED_AFTER_MS. */
  stalledAfterMs?: number;
  brokerProbe?: Deps['brokerProbe'];
}

/** The kernel's running service (state, health, done, stop), its port named `opsPort`. */
export interface FixedConsumer extends Omit<MachineService, 'port'> {
  readonly opsPort: number;
  readonly pipeline: Pipeline;
  readonly metrics: Metrics;
}

/** Builds the clients, provides the machine's actors and starts it; main.ts and tests call this. */
export async function startFixedConsumer(
  config: FixedConsumerConfig,
  logger: Logger,
  overrides: FixedConsumerOverrides = {},
): Promise<FixedConsumer> {
  const clock = overrides.clock ?? systemClock;
  const metrics = new Metrics('fixed_consumer');
  const topics: Record<'ticks' | 'dlq' | 'barUpdates', TopicSpec> = {
    ticks: TOPICS.ticks,
    dlq: TOPICS.ticksDlq,
    barUpdates: TOPICS.barUpdates,
    ...overrides.topics,
  };
  const kafka = createKafka({ brokers: config.kafkaBrokers, clientId: SERVICE_NAME, logger });
  const publisher = new KafkaPublisher(kafka);
  const repository = new Repository({
    url: config.databaseUrl,
    ...(overrides.schema ? { schema: overrides.schema } : {}),
    ...(overrides.dbTimeouts ? { timeouts: overrides.dbTimeouts } : {}),
    logger,
    clock,
  });
  const liveStore =
    overrides.liveStore ??
    createLiveBarStore({ redisUrl: config.redisUrl, prefix: config.cachePrefix, logger });
  const lag = new ConsumerLagReader(kafka, {
    groupId: config.groupId,
    topic: topics.ticks.name,
    clock,
  });
  const pipelineHealth = new Feed<DependencyHealth>();
  const pipeline = new Pipeline({
    repository,
    publisher,
    liveStore,
    topics: { dlq: topics.dlq.name, barUpdates: topics.barUpdates.name },
    clock,
    logger,
    metrics,
    latenessMs: config.latenessMs,
    // Through the consume actor (it subscribes and sends them up), never around the machine.
    onHealth: (check, problem) => pipelineHealth.publish({ check, problem }),
    consumerLag: () => lag.read(),
    ...(overrides.stalledAfterMs === undefined ? {} : { stalledAfterMs: overrides.stalledAfterMs }),
  });
  const deps: Deps = {
    kafka,
    publisher,
    repository,
    liveStore,
    pipeline,
    clock,
    logger,
    groupId: config.groupId,
    topics,
    tickIntervalMs: overrides.tickIntervalMs ?? CLOCK_TICK_MS,
    stops: new PendingStops(),
    lag,
    pipelineHealth,
    ...(overrides.brokerProbe ? { brokerProbe: overrides.brokerProbe } : {}),
  };
  const service = await startMachineService({
    name: SERVICE_NAME,
    machine: fixedConsumerMachine.provide({
      actors: {
        connect: connectActor(deps),
        restore: restoreActor(deps),
        consume: consumeActor(deps),
        shutdown: shutdownActor(deps),
      },
    }),
    logger,
    metrics,
    // The machine's delays (backoff) run on the service's clock, like every other timer.
    clock,
    ops: { port: config.healthPort, portVariable: 'HEALTH_PORT', host: config.host },
    checks: () => ({ liveCache: liveStore.kind, liveSymbols: pipeline.symbols().length }),
    // Closed after the consumer has left the group (the machine's stopping state), lag reader first.
    resources: [
      { name: 'publisher', close: () => publisher.disconnect() },
      { name: 'repository', close: () => repository.close() },
      { name: 'liveStore', close: () => liveStore.close() },
      { name: 'lag', close: () => lag.close() },
    ],
  });

  return {
    opsPort: service.port,
    pipeline,
    metrics,
    state: service.state,
    health: service.health,
    done: service.done,
    stop: service.stop,
  };
}
