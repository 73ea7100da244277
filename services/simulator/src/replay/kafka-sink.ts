/**
 * The replay's sink on the broker: each trade as a tick message (the contract's format) with
 * `source: "replay"` and its original `ts`, keyed by symbol. The record timestamp is left to the
 * producer (now), so the topic's retention counts from the replay, not from the trade.
 */
import type { Tick } from '@candlestream/core';
import { encodeTick } from '@candlestream/core';
import type { KafkaPublisher } from '@candlestream/kafka';
import type { ReplaySink } from './types.js';

export function kafkaSink(publisher: KafkaPublisher, topic: string): ReplaySink {
  return {
    send: (trades: readonly Tick[]) =>
      publisher.send(
        topic,
        trades.map((t) => ({ key: t.symbol, value: encodeTick({ ...t, source: 'replay' }) })),
      ),
  };
}
