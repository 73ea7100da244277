import type { Clock } from '@candlestream/core';
import { systemClock } from '@candlestream/core';
import { Repository } from '@candlestream/db';
import type { TopicSpec } from '@candlestream/kafka';
import { createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { MachineService } from '@candlestream/runtime';
import { Metrics, PendingStops, startMachineService } from '@candlestream/runtime';
import { commandsActor } from './actors/commands.js';
import { connectActor } from './actors/connect.js';
import type { Deps } from './actors/deps.js';
import { hostedSessionActors } from './actors/hosted.js';
import { outboxActor } from './actors/outbox.js';
import { SessionPublishers } from './actors/publishers.js';
import { shutdownActor } from './actors/shutdown.js';
import { tickerActor } from './actors/ticker.js';
import type { SimulatorConfig } from './config.js';
import { storedHistory } from './history/index.js';
import { sessionMachine } from './session.machine.js';
import type { SimulatorContext } from './simulator.machine.js';
import { reportToParent, simulatorMachine } from './simulator.machine.js';

export const SERVICE_NAME = 'simulator';

export interface SimulatorOverrides {
  clock?: Clock;
  schema?: string;
  topics?: Partial<Deps['topics']>;
}

export interface Simulator extends Omit<MachineService, 'port'> {
  readonly opsPort: number;
  readonly metrics: Metrics;
}

/** Builds the clients, provides the machine's actors and starts it; main.ts and tests call this. */
export async function startSimulator(
  config: SimulatorConfig,
  logger: Logger,
  overrides: SimulatorOverrides = {},
): Promise<Simulator> {
  const clock = overrides.clock ?? systemClock;
  const metrics = new Metrics(SERVICE_NAME);
  const topics: Record<'commands' | 'status', TopicSpec> = {
    commands: TOPICS.replayCommands,
    status: TOPICS.replayStatus,
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
  const publishers = new SessionPublishers(kafka);
  const deps: Deps = {
    kafka,
    publisher,
    publishers,
    repository,
    source: storedHistory({ repository, logger }),
    clock,
    logger,
    counters: {
      commands: metrics.counter('replay_commands_total', 'replay commands handled, by command', {
        labels: ['command'],
      }),
      statuses: metrics.counter('replay_statuses_total', 'session statuses published'),
      topicsDeleted: metrics.counter(
        'replay_topics_deleted_total',
        'topics of removed sessions deleted',
      ),
    },
    groupId: config.groupId,
    topics,
    stops: new PendingStops(),
  };
  const service = await startMachineService({
    name: SERVICE_NAME,
    machine: simulatorMachine.provide({
      actors: {
        connect: connectActor(deps),
        commands: commandsActor(deps),
        outbox: outboxActor(deps),
        ticker: tickerActor(deps),
        shutdown: shutdownActor(deps),
        session: sessionMachine.provide({
          actions: { report: reportToParent },
          actors: hostedSessionActors(deps),
        }),
      },
    }),
    input: { maxSessions: config.maxSessions, idleMs: config.idleTimeoutMs },
    logger,
    metrics,
    clock,
    ops: { port: config.healthPort, portVariable: 'HEALTH_PORT', host: config.host },
    checks: (context) => {
      const { sessions, commands } = context as SimulatorContext;
      const hosted = Object.values(sessions);
      return {
        sessions: hosted.length,
        playing: hosted.filter((s) => s.last.state === 'playing').length,
        commands,
      };
    },
    resources: [
      { name: 'publisher', close: () => publisher.disconnect() },
      { name: 'sessionPublishers', close: () => publishers.closeAll() },
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
