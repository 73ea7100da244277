import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/**
 * The order STYLE asks for: the commands consumer (and with it every job's consumer) leaves its
 * group first; the kernel closes the producer and the pool (service.ts's resources) after.
 */
export function shutdownActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.stops.settled();
  });
}
