import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** The consumers leave their groups first; the kernel closes the producer and the pool after. */
export function shutdownActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.stops.settled();
  });
}
