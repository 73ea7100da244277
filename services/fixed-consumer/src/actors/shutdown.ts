import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/**
 * The order STYLE asks for: the consumer leaves the group first; the kernel closes the producer
 * and the pools (service.ts's resources) once the actor has stopped.
 */
export function shutdownActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.stops.settled();
  });
}
