/**
 * The session machine's `replay` actor: runs a ReplayEngine, hands it the controls the machine
 * forwards, and reports its status a few times a second, then how it ended.
 */
import type { Clock } from '@candlestream/core';
import { errorMessage } from '@candlestream/core';
import { fromCallback } from 'xstate';
import { ReplayEngine } from '../replay/engine.js';
import type { HistorySource, ReplaySink } from '../replay/types.js';
import type { ControlEvent, ReplayEvent, ReplayPlan } from '../session.machine.js';

/** How often the actor reports the engine's status, ms. */
export const STATUS_INTERVAL_MS = 250;

export interface ReplayDeps {
  source: HistorySource;
  /** The sink publishing to a topic. */
  sink: (topic: string) => ReplaySink;
  clock: Clock;
  /** Most trades per send; default the engine's. */
  maxBatch?: number;
}

export function replayActor(deps: ReplayDeps) {
  return fromCallback<ControlEvent, { paused: boolean; plan: ReplayPlan }>(
    ({ input, receive, sendBack }) => {
      const engine = new ReplayEngine({
        source: deps.source,
        sink: deps.sink(input.plan.topic),
        range: input.plan.range,
        clock: deps.clock,
        speed: input.plan.speed,
        paused: input.paused,
        ...(deps.maxBatch ? { maxBatch: deps.maxBatch } : {}),
      });
      const report = (): void => {
        sendBack({ type: 'REPLAY.STATUS', status: engine.status() } satisfies ReplayEvent);
      };
      const timer = deps.clock.setInterval(report, STATUS_INTERVAL_MS);
      receive((event) => {
        switch (event.type) {
          case 'PAUSE':
            engine.pause();
            break;
          case 'RESUME':
            engine.resume();
            break;
          case 'STEP':
            engine.step(event.interval);
            break;
          case 'SEEK':
            engine.seek(event.to);
            break;
          case 'SPEED':
            engine.setSpeed(event.speed);
            break;
          case 'QUIT':
            engine.stop();
            break;
        }
        report();
      });
      engine.run().then(
        (summary) => {
          deps.clock.clearInterval(timer);
          report();
          sendBack({ type: 'REPLAY.ENDED', summary } satisfies ReplayEvent);
        },
        (err: unknown) => {
          deps.clock.clearInterval(timer);
          sendBack({ type: 'REPLAY.FAILED', error: errorMessage(err) } satisfies ReplayEvent);
        },
      );
      return () => {
        deps.clock.clearInterval(timer);
        engine.stop();
      };
    },
  );
}
