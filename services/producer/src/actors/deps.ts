import type { Clock, EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import type {
  BatchingPublisher,
  KafkaClient,
  KafkaPublisher,
  TopicSpec,
} from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Counter, Feed } from '@candlestream/runtime';
import type { TradeSource, SourceStatus } from '../sources/source.js';

/** The buffer's view of the broker: failing (with what is wrong) or accepting trades again. */
export type BrokerHealth = { ok: true } | { ok: false; problem: string };

/** Everything the producer's actors touch, built once in service.ts. */
export interface Deps {
  kafka: KafkaClient;
  publisher: KafkaPublisher;
  /** The bounded buffer in front of the broker; it outlives source restarts. */
  buffer: BatchingPublisher<Tick>;
  source: TradeSource;
  topic: TopicSpec;
  logger: Logger;
  /** Newest trade time handed to the buffer per symbol: where a restarted source resumes. */
  newest: Map<MarketSymbol, EpochMs>;
  received: Counter;
  /** The buffer's health; the stream actor subscribes while it runs and sends it up. */
  brokerHealth: Feed<BrokerHealth>;
  lastSourceStatus: SourceStatus | undefined;
  /** Publishing ceiling in trades per wall-clock second; undefined = as fast as the broker takes them. */
  maxRate: number | undefined;
  /** How long a stop waits for buffered trades to reach the broker. */
  drainTimeoutMs: number;
  /** The one clock the actors' timers and pacing run on; default systemClock. */
  clock?: Clock;
}
