import { fromPromise } from 'xstate';
import type { TimerHandle } from '@candlestream/core';
import { systemClock } from '@candlestream/core';
import type { Deps } from './deps.js';

/** A finite source is done: everything buffered goes out before the producer ends. */
export function drainActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.buffer.flush();
  });
}

/**
 * Sends what is buffered, for at most the drain timeout, then closes the buffer. The broker
 * connection is service.ts's: the kernel closes it once the actor has stopped.
 */
export function shutdownActor(deps: Deps) {
  return fromPromise<void>(async () => {
    const log = deps.logger.child({ component: 'shutdown' });
    const clock = deps.clock ?? systemClock;
    let timer: TimerHandle | undefined;
    const drained = await Promise.race([
      deps.buffer.flush().then(() => true),
      new Promise<boolean>(
        (resolve) => (timer = clock.setTimeout(() => resolve(false), deps.drainTimeoutMs)),
      ),
    ]);
    clock.clearTimeout(timer);
    await deps.buffer.close({ drain: false });
    if (!drained) {
      log.warn('stopped with trades still buffered', { buffered: deps.buffer.stats.buffered });
    }
  });
}
