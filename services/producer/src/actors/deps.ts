import type { EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import type {
  BatchingPublisher,
  KafkaClient,
  KafkaPublisher,
  TopicSpec,
} from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Counter } from '@candlestream/runtime';
import type { TradeSource, SourceStatus } from '../sources/source.js';

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
  /** Set by the stream actor while it runs, so buffer health reaches the machine. */
  report: ((event: { ok: boolean; problem?: string }) => void) | undefined;
  lastSourceStatus: SourceStatus | undefined;
  /** Publishing ceiling in trades per wall-clock second; undefined = as fast as the broker takes them. */
  maxRate: number | undefined;
  /** How long a stop waits for buffered trades to reach the broker. */
  drainTimeoutMs: number;
}
