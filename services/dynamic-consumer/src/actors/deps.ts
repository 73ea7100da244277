import type { Clock } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import type { KafkaClient, KafkaPublisher, TopicSpec } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Feed, PendingStops } from '@candlestream/runtime';
import type { CommandHandler } from '../commands.js';

/** A dependency of the jobs failing (`problem`) or answering again (`problem` undefined). */
export interface DependencyHealth {
  check: string;
  problem: string | undefined;
}

/** Everything the actors touch, built once in service.ts. */
export interface Deps {
  kafka: KafkaClient;
  publisher: KafkaPublisher;
  repository: Repository;
  commands: CommandHandler;
  clock: Clock;
  logger: Logger;
  groupId: string;
  topics: { commands: TopicSpec; status: TopicSpec; barUpdates: TopicSpec; dlq: TopicSpec };
  /**
   * The commands consumer leaving its group (cleanup cannot await it; its held batch stops the
   * jobs' consumers first): connect waits for it before a new member joins, shutdown before the
   * pools close.
   */
  stops: PendingStops;
  /**
   * The jobs' dependency reports: the running consume actor subscribes and sends them up, so
   * health reaches the machine through its invoked actor. Outside `consuming` they are dropped.
   */
  jobsHealth: Feed<DependencyHealth>;
  /** Broker probe period and timeout (packages/kafka watchBroker). */
  brokerProbe?: { intervalMs: number; timeoutMs: number };
}
