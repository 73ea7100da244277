import { errorMessage } from '@candlestream/core';
import type { ConsumedMessage } from '@candlestream/kafka';
import { BatchConsumer } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { CoordinatorEvent } from '../coordinator.machine.js';
import type { Deps } from './deps.js';

/**
 * A group consumer of one of the coordinator's topics, run by a `fromCallback` actor: each
 * message is handled in turn and a batch is committed after its last handler resolved; a crash
 * reaches the machine as CRASHED. Returns the cleanup, which leaves the group in the background
 * (connect and shutdown wait for it through `deps.stops`).
 */
export function consumeInActor(
  deps: Deps,
  sendBack: (event: CoordinatorEvent) => void,
  options: {
    groupId: string;
    topic: string;
    log: Logger;
    /** Called for each message; `live()` is false once the actor is stopping. */
    handle: (message: ConsumedMessage, live: () => boolean) => Promise<void>;
  },
): () => void {
  let stopped = false;
  const live = (): boolean => !stopped;
  const crashed = (err: unknown): void => {
    if (!stopped) sendBack({ type: 'CRASHED', error: errorMessage(err) });
  };
  const consumer = new BatchConsumer(deps.kafka, {
    groupId: options.groupId,
    topics: [options.topic],
    fromBeginning: true,
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
    deps.stops.add(stopping);
  };
}
