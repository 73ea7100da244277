import { decodeReplayStatus } from '@candlestream/core';
import { consumeInActor } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { DatastoreEvent } from '../datastore.machine.js';
import type { Deps } from './deps.js';

/**
 * Follows replay-status from now on (its own group, newest offsets: every live session reports
 * within a heartbeat, so a restarted datastore knows them again at once) into the replay desk.
 * A crash is reported, never thrown.
 */
export function followReplaysActor(deps: Deps) {
  return fromCallback<DatastoreEvent>(({ sendBack }) => {
    const log = deps.logger.child({ component: 'follow-replays' });
    let refused = 0;
    return consumeInActor(deps.kafka, {
      groupId: deps.replayGroupId,
      topic: deps.replayStatus.name,
      fromBeginning: false,
      // POST /replays waits for the first status: keep it short.
      maxWaitTimeMs: 20,
      log,
      stops: deps.stops,
      crashed: (error) => sendBack({ type: 'CRASHED', error }),
      handle: (m) => {
        const decoded = decodeReplayStatus(m.value ?? '');
        if (!decoded.ok) {
          if (refused++ < 10)
            log.warn('replay status refused', { reason: decoded.reason, offset: m.offset });
          return;
        }
        deps.replays.onStatus(decoded.value);
      },
    });
  });
}
