import type { Clock } from '@candlestream/core';
import type { BackfillJobs, Repository } from '@candlestream/db';
import type { KafkaClient, KafkaPublisher, TopicSpec } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Counter, Metrics, PendingStops } from '@candlestream/runtime';

/** Everything the actors touch, built once in service.ts. */
export interface Deps {
  kafka: KafkaClient;
  publisher: KafkaPublisher;
  repository: Repository;
  jobs: BackfillJobs;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  counters: { planned: Counter; ended: Counter; topicsDeleted: Counter };
  groupId: string;
  topics: { requests: TopicSpec; commands: TopicSpec; status: TopicSpec };
  /** How long an ended job's topic is kept before the sweeper deletes it. */
  topicTtlMs: number;
  /** How often the sweeper looks for topics to delete. */
  sweepIntervalMs: number;
  /** The consumers the running actors made, leaving their groups (cleanup cannot await it). */
  stops: PendingStops;
}
