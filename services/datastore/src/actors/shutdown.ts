import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** Stop taking requests and updates first, then the pools. */
export function shutdownActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.consumer?.stop();
    await deps.closeServing();
    await deps.repository.close();
  });
}
