import type { Clock } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import type { KafkaClient, KafkaPublisher, TopicSpec } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Counter, PendingStops } from '@candlestream/runtime';
import type { HistorySource } from '../replay/types.js';
import type { SessionPublishers } from './publishers.js';

/** Everything the simulator service's actors touch, built once in service.ts. */
export interface Deps {
  kafka: KafkaClient;
  /** replay-status. */
  publisher: KafkaPublisher;
  /** Each hosted session's own producer of its trades. */
  publishers: SessionPublishers;
  repository: Repository;
  /** Where hosted sessions read their history. */
  source: HistorySource;
  clock: Clock;
  logger: Logger;
  counters: { commands: Counter; statuses: Counter; topicsDeleted: Counter };
  groupId: string;
  topics: { commands: TopicSpec; status: TopicSpec };
  /** The commands consumer leaving its group (cleanup cannot await it). */
  stops: PendingStops;
}
