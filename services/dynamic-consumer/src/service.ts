import type { Clock } from '@candlestream/core';
import { systemClock } from '@candlestream/core';
import type { DbTimeouts } from '@candlestream/db';
import { Repository } from '@candlestream/db';
import type { TopicSpec } from '@candlestream/kafka';
import { createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { MachineService } from '@candlestream/runtime';
import { Feed, Metrics, PendingStops, startMachineService } from '@candlestream/runtime';
import { connectActor } from './actors/connect.js';
import { consumeActor } from './actors/consume.js';
import type { DependencyHealth, Deps } from './actors/deps.js';
import { shutdownActor } from './actors/shutdown.js';
import { CommandHandler } from './commands.js';
import type { DynamicConsumerConfig } from './config.js';
import { dynamicConsumerMachine } from './dynamic-consumer.machine.js';
import { createRetrier } from './retrying.js';

export const SERVICE_NAME = 'dynamic-consumer';

export interface DynamicConsumerOverrides {
  /** Event time (closed buckets, report times); a SimulatedClock in tests. */
  clock?: Clock;
  /** Real waiting (backoffs, stall reports, heartbeats); systemClock otherwise. */
  waitClock?: Clock;
  /** Database schema (tests isolate by schema). */
  schema?: string;
  topics?: Partial<Deps['topics']>;
  /** Database timeouts (packages/db DEFAULT_DB_TIMEOUTS otherwise). */
  dbTimeouts?: Partial<DbTimeouts>;
  /** See packages/runtime STALLED_AFTER_MS. */
  stalledAfterMs?: number;
  brokerProbe?: Deps['brokerProbe'];
}

/** The kernel's running service (state, health, done, stop), its port named `opsPort`. */
export interface DynamicConsumer extends Omit<MachineService, 'port'> {
  readonly opsPort: number;
  readonly metrics: Metrics;
}

/** Builds the clients, provides the machine's actors and starts it; main.ts and tests call this. */
export async function startDynamicConsumer(
  config: DynamicConsumerConfig,
  logger: Logger,
  overrides: DynamicConsumerOverrides = {},
): Promise<DynamicConsumer> {
  const clock = overrides.clock ?? systemClock;
  const waitClock = overrides.waitClock ?? systemClock;
  const metrics = new Metrics('dynamic_consumer');
  const topics: Record<'commands' | 'status' | 'barUpdates' | 'dlq', TopicSpec> = {
    commands: TOPICS.backfillCommands,
    status: TOPICS.backfillStatus,
    barUpdates: TOPICS.barUpdates,
    dlq: TOPICS.ticksDlq,
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
  const jobsHealth = new Feed<DependencyHealth>();
  const retries = metrics.counter('retries_total', 'failed attempts that were retried', {
    labels: ['check'],
  });
  const retrier = createRetrier({
    logger: logger.child({ component: 'job' }),
    // Through the consume actor (it subscribes and sends them up), never around the machine.
    onHealth: (check, problem) => jobsHealth.publish({ check, problem }),
    onRetry: (check) => retries.inc(1, { check }),
    waitClock,
    ...(overrides.stalledAfterMs === undefined ? {} : { stalledAfterMs: overrides.stalledAfterMs }),
  });
  const commands = new CommandHandler({
    jobs: {
      kafka,
      publisher,
      repository,
      clock,
      waitClock,
      logger,
      retrier,
      groupId: config.groupId,
      topics: {
        status: topics.status.name,
        barUpdates: topics.barUpdates.name,
        dlq: topics.dlq.name,
      },
      metrics: {
        records: metrics.counter('records_consumed_total', 'job topic records read'),
        stored: metrics.counter('candles_stored_total', 'candles written into bars_1m'),
        skipped: metrics.counter(
          'candles_skipped_total',
          'candles not written: their minute has trades, whose bar wins',
        ),
        dead: metrics.counter('records_dead_lettered_total', 'job topic records sent to the DLQ'),
        updates: metrics.counter('bar_updates_published_total', 'final bars published'),
      },
    },
    waitClock,
    logger,
    metrics: {
      malformed: metrics.counter(
        'commands_malformed_total',
        'backfill commands skipped as malformed',
      ),
      started: metrics.counter('jobs_started_total', 'backfill jobs started (restarts included)'),
      ended: metrics.counter('jobs_ended_total', 'backfill jobs whose storing ended', {
        labels: ['status'],
      }),
    },
  });
  metrics.gauge('jobs_running', 'backfill jobs storing now', () => commands.running().length);
  const deps: Deps = {
    kafka,
    publisher,
    repository,
    commands,
    clock,
    logger,
    groupId: config.groupId,
    topics,
    stops: new PendingStops(),
    jobsHealth,
    ...(overrides.brokerProbe ? { brokerProbe: overrides.brokerProbe } : {}),
  };
  const service = await startMachineService({
    name: SERVICE_NAME,
    machine: dynamicConsumerMachine.provide({
      actors: {
        connect: connectActor(deps),
        consume: consumeActor(deps),
        shutdown: shutdownActor(deps),
      },
    }),
    logger,
    metrics,
    // The machine's delays (backoff) run on the service's clock, like every other timer.
    clock,
    ops: { port: config.healthPort, portVariable: 'HEALTH_PORT', host: config.host },
    checks: () => ({ jobs: commands.running() }),
    // Closed after the consumers have left their groups (the machine's stopping state).
    resources: [
      { name: 'publisher', close: () => publisher.disconnect() },
      { name: 'repository', close: () => repository.close() },
    ],
  });

  return {
    opsPort: service.port,
    metrics,
    state: service.state,
    health: service.health,
    done: service.done,
    stop: service.stop,
  };
}
