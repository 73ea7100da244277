import type { Repository } from '@candlestream/db';
import type { BatchConsumer, KafkaClient, TopicSpec } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { LiveView } from '../live.js';

export interface Deps {
  kafka: KafkaClient;
  repository: Repository;
  live: LiveView;
  logger: Logger;
  barUpdates: TopicSpec;
  /** This instance's own group: every datastore sees every update. */
  groupId: string;
  consumer: BatchConsumer | undefined;
  /** Broker probe period and timeout (packages/kafka watchBroker defaults otherwise). */
  brokerProbe?: { intervalMs: number; timeoutMs: number };
  /** Closes what main opened beside the machine (HTTP server, stream hub, Redis). */
  closeServing: () => Promise<void>;
}
