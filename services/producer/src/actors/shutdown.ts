import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** Sends what is buffered (bounded by a timeout), then closes the producer. */
export function drainActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.buffer.flush();
  });
}

export function shutdownActor(deps: Deps) {
  return fromPromise<void>(async () => {
    const log = deps.logger.child({ component: 'shutdown' });
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      deps.buffer.flush().then(() => true),
      new Promise<boolean>(
        (resolve) => (timer = setTimeout(() => resolve(false), deps.drainTimeoutMs)),
      ),
    ]);
    clearTimeout(timer);
    await deps.buffer.close({ drain: false });
    if (!drained) {
      log.warn('stopped with trades still buffered', { buffered: deps.buffer.stats.buffered });
    }
    await deps.publisher.disconnect();
  });
}
