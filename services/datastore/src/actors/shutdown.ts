import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/**
 * Stop taking updates first; the kernel then closes the HTTP server (requests, /stream) and the
 * pools (service.ts's resources) once the actor has stopped.
 */
export function shutdownActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.stops.settled();
  });
}
