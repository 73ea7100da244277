import type { ReplaySessionStatus } from '@candlestream/core';
import { encodeReplayMessage, toIso } from '@candlestream/core';
import { fromPromise } from 'xstate';
import type { OutgoingStatus } from '../simulator.machine.js';
import type { Deps } from './deps.js';

/**
 * The commands consumer leaves its group; then every session still running is reported failed
 * with where its replay stopped, so nobody takes a half-published session for a live one. The
 * kernel closes the publisher and the pool after.
 */
export function shutdownActor(deps: Deps) {
  return fromPromise<void, { running: OutgoingStatus[] }>(async ({ input }) => {
    await deps.stops.settled();
    if (input.running.length === 0) return;
    const at = deps.clock.now();
    const statuses: ReplaySessionStatus[] = input.running.map((s) => ({
      ...s,
      state: 'failed',
      error: `the simulator stopped while this session was ${s.state}; its replay stopped at ${
        s.simTime === null ? 'its start' : toIso(s.simTime)
      } after ${String(s.messages)} trades`,
      at,
    }));
    await deps.publisher.send(
      deps.topics.status.name,
      statuses.map((s) => ({ key: s.session, value: encodeReplayMessage(s) })),
    );
    deps.logger.info('replay sessions stopped', { sessions: statuses.map((s) => s.session) });
  });
}
