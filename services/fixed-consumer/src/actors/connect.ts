import { ensureTopics } from '@candlestream/kafka';
import { connectServiceActor } from '@candlestream/runtime';
import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** Broker reachable, topics present, database migrated: the consumer has somewhere to write. */
export function connectActor(deps: Deps) {
  return connectServiceActor(deps, () => ensureTopics(deps.kafka, Object.values(deps.topics)));
}

/** Live candles rebuilt from the stored trades and minutes before any message is consumed. */
export function restoreActor(deps: Deps) {
  return fromPromise<void>(async ({ signal }) => {
    await deps.pipeline.restore(signal);
  });
}
