import { fromCallback } from 'xstate';
import type { SimulatorEvent } from '../simulator.machine.js';
import type { Deps } from './deps.js';

/** Sends SWEEP every `everyMs`: the machine then removes the sessions idle for too long. */
export function tickerActor(deps: Pick<Deps, 'clock'>) {
  return fromCallback<SimulatorEvent, { everyMs: number }>(({ input, sendBack }) => {
    const timer = deps.clock.setInterval(
      () => sendBack({ type: 'SWEEP', now: deps.clock.now() }),
      input.everyMs,
    );
    return () => deps.clock.clearInterval(timer);
  });
}
