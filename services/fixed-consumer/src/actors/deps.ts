import type { LiveBarStore } from '@candlestream/cache';
import type { Clock } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import type { BatchConsumer, KafkaClient, KafkaPublisher, TopicSpec } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Pipeline } from '../pipeline.js';

/** Everything the actors touch, built once in service.ts. */
export interface Deps {
  kafka: KafkaClient;
  publisher: KafkaPublisher;
  repository: Repository;
  liveStore: LiveBarStore;
  pipeline: Pipeline;
  clock: Clock;
  logger: Logger;
  groupId: string;
  topics: { ticks: TopicSpec; dlq: TopicSpec; barUpdates: TopicSpec };
  /** How often quiet symbols' bars are closed on the clock. */
  tickIntervalMs: number;
  /** The running consumer, so a restart or stop can wait for the previous one to leave. */
  consumer: BatchConsumer | undefined;
}
