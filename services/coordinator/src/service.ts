import type { Clock } from '@candlestream/core';
import { systemClock } from '@candlestream/core';
import { BackfillJobs, Repository } from '@candlestream/db';
import type { TopicSpec } from '@candlestream/kafka';
import { createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { MachineService } from '@candlestream/runtime';
import { Metrics, PendingStops, startMachineService } from '@candlestream/runtime';
import { connectActor, restoreActor } from './actors/connect.js';
import type { Deps } from './actors/deps.js';
import { finishJobActor, persistJobActor, startJobActor } from './actors/job.js';
import { reportsActor } from './actors/reports.js';
import { requestsActor } from './actors/requests.js';
import { shutdownActor } from './actors/shutdown.js';
import { sweeperActor } from './actors/sweeper.js';
import type { CoordinatorConfig } from './config.js';
import type { CoordinatorContext } from './coordinator.machine.js';
import { coordinatorMachine } from './coordinator.machine.js';
import { jobMachine } from './job.machine.js';

export const SERVICE_NAME = 'coordinator';
/** How often ended jobs' topics are looked for: a quarter of their TTL, within these bounds. */
export const MAX_SWEEP_INTERVAL_MS = 30_000;
export const MIN_SWEEP_INTERVAL_MS = 1_000;

export interface CoordinatorOverrides {
  clock?: Clock;
  schema?: string;
  topics?: Partial<Deps['topics']>;
  sweepIntervalMs?: number;
}

export interface Coordinator extends Omit<MachineService, 'port'> {
  readonly opsPort: number;
  readonly metrics: Metrics;
  readonly jobs: BackfillJobs;
}

/** Builds the clients, provides the machine's actors and starts it; main.ts and tests call this. */
export async function startCoordinator(
  config: CoordinatorConfig,
  logger: Logger,
  overrides: CoordinatorOverrides = {},
): Promise<Coordinator> {
  const clock = overrides.clock ?? systemClock;
  const metrics = new Metrics('coordinator');
  const topics: Record<'requests' | 'commands' | 'status', TopicSpec> = {
    requests: TOPICS.backfillRequests,
    commands: TOPICS.backfillCommands,
    status: TOPICS.backfillStatus,
    ...overrides.topics,
  };
  const kafka = createKafka({ brokers: config.kafkaBrokers, clientId: SERVICE_NAME, logger });
  const publisher = new KafkaPublisher(kafka);
  const repository = new Repository({
    url: config.databaseUrl,
    ...(overrides.schema ? { schema: overrides.schema } : {}),
    logger,
    clock,
  });
  const jobs = new BackfillJobs(repository);
  const deps: Deps = {
    kafka,
    publisher,
    repository,
    jobs,
    clock,
    logger,
    metrics,
    counters: {
      planned: metrics.counter(
        'backfill_jobs_planned_total',
        'backfill requests planned, by plan',
        {
          labels: ['plan'],
        },
      ),
      ended: metrics.counter('backfill_jobs_ended_total', 'backfill jobs ended, by status', {
        labels: ['status'],
      }),
      topicsDeleted: metrics.counter(
        'backfill_topics_deleted_total',
        'ended jobs\u2019 topics deleted',
      ),
    },
    groupId: config.groupId,
    topics,
    topicTtlMs: config.topicTtlMs,
    sweepIntervalMs:
      overrides.sweepIntervalMs ??
      Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(MIN_SWEEP_INTERVAL_MS, config.topicTtlMs / 4)),
    stops: new PendingStops(),
  };
  const job = jobMachine.provide({
    actors: {
      start: startJobActor(deps),
      persist: persistJobActor(deps),
      finish: finishJobActor(deps),
    },
    delays: { stallTimeout: config.stallMs },
  });
  const service = await startMachineService({
    name: SERVICE_NAME,
    machine: coordinatorMachine.provide({
      actors: {
        connect: connectActor(deps),
        restore: restoreActor(deps),
        requests: requestsActor(deps),
        reports: reportsActor(deps),
        sweeper: sweeperActor(deps),
        shutdown: shutdownActor(deps),
        job,
      },
    }),
    input: { maxJobs: config.maxJobs },
    logger,
    metrics,
    clock,
    ops: { port: config.healthPort, portVariable: 'HEALTH_PORT', host: config.host },
    checks: (context) => {
      const { jobs: running, fetching, queue } = context as CoordinatorContext;
      return {
        runningJobs: Object.keys(running).length,
        fetchingJobs: fetching.length,
        queuedJobs: queue.length,
      };
    },
    resources: [
      { name: 'publisher', close: () => publisher.disconnect() },
      { name: 'repository', close: () => repository.close() },
    ],
  });
  return {
    opsPort: service.port,
    metrics,
    jobs,
    state: service.state,
    health: service.health,
    done: service.done,
    stop: service.stop,
  };
}
