import type { LiveBarStore } from '@candlestream/cache';
import type { Clock } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import type {
  ConsumerLagReader,
  KafkaClient,
  KafkaPublisher,
  TopicSpec,
} from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Feed, PendingStops } from '@candlestream/runtime';
import type { Pipeline } from '../pipeline.js';

/** A dependency of the pipeline failing (`problem`) or answering again (`problem` undefined). */
export interface DependencyHealth {
  check: string;
  problem: string | undefined;
}

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
  /**
   * The consume actor's consumer leaving its group (cleanup cannot await it): connect waits for
   * it before a new member joins, shutdown before the pools close.
   */
  stops: PendingStops;
  /** The group's lag as the broker has it, for /metrics; closed at shutdown. */
  lag: ConsumerLagReader;
  /**
   * The pipeline's dependency reports: the running consume actor subscribes and sends them up, so
   * health reaches the machine through its invoked actor. Outside `consuming` nobody listens and
   * they are dropped: the state's tag says enough.
   */
  pipelineHealth: Feed<DependencyHealth>;
  /** Broker probe period and timeout (packages/kafka watchBroker). */
  brokerProbe?: { intervalMs: number; timeoutMs: number };
}
