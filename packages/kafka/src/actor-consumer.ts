import { errorMessage } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { Kafka } from 'kafkajs';
import type { ConsumedMessage } from './consumer.js';
import { BatchConsumer } from './consumer.js';

export interface ActorConsumerOptions {
  groupId: string;
  topic: string;
  /** Where a new group starts: the earliest retained record (true) or only new ones. */
  fromBeginning: boolean;
  /** How long a fetch waits for data; bounds the latency of a quiet topic. */
  maxWaitTimeMs?: number;
  log: Logger;
  /** Called for each message in turn; `live()` is false once the actor is stopping. */
  handle: (message: ConsumedMessage, live: () => boolean) => Promise<void> | void;
  /** Told of a crash (the handler threw, or kafkajs gave up) while the actor still runs. */
  crashed: (error: string) => void;
  /** Takes the consumer's stop, which the actor's cleanup cannot await (runtime PendingStops). */
  stops: { add(stop: Promise<unknown>): void };
}

/**
 * A group consumer of one topic run by a `fromCallback` actor: each message is handled in turn
 * and a batch is committed after its last handler resolved; a crash is reported through
 * `crashed`, never thrown. Returns the actor's cleanup, which leaves the group in the background
 * (handed to `stops`, which connect and shutdown wait for).
 */
export function consumeInActor(kafka: Kafka, options: ActorConsumerOptions): () => void {
  let stopped = false;
  const live = (): boolean => !stopped;
  const crashed = (err: unknown): void => {
    if (!stopped) options.crashed(errorMessage(err));
  };
  const consumer = new BatchConsumer(kafka, {
    groupId: options.groupId,
    topics: [options.topic],
    fromBeginning: options.fromBeginning,
    ...(options.maxWaitTimeMs === undefined ? {} : { maxWaitTimeMs: options.maxWaitTimeMs }),
    onCrash: crashed,
  });
  consumer
    .start(async (batch) => {
      for (const message of batch.messages) await options.handle(message, live);
    })
    .catch(crashed);
  return () => {
    stopped = true;
    const stopping = consumer.stop();
    stopping.catch((err: unknown) => options.log.warn('consumer stop failed', { err }));
    options.stops.add(stopping);
  };
}
