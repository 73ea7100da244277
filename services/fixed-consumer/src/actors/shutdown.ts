import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** The order STYLE asks for: the consumer leaves the group, then the producer, then the pools. */
export function shutdownActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.consumer?.stop();
    await deps.lag.close();
    await deps.publisher.disconnect();
    await deps.repository.close();
    await deps.liveStore.close();
  });
}
