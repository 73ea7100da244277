import type { LiveBarStore } from '@candlestream/cache';
import type { Clock } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import type {
  BatchConsumer,
  ConsumerLagReader,
  KafkaClient,
  KafkaPublisher,
  TopicSpec,
} from '@candlestream/kafka';
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
  /** The group's lag as the broker has it, for /metrics; closed at shutdown. */
  lag: ConsumerLagReader;
  /**
   * Where the pipeline's dependency reports go: the running consume actor's `sendBack` (set and
   * cleared by it), so health reaches the machine through its invoked actor. Unset, they are
   * dropped: outside `consuming` the state's tag says enough.
   */
  reportHealth: ((check: string, problem: string | undefined) => void) | undefined;
  /** Broker probe period and timeout (packages/kafka watchBroker). */
  brokerProbe?: { intervalMs: number; timeoutMs: number };
}
