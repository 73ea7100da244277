import { decodeReplayStatus, errorMessage } from '@candlestream/core';
import { BatchConsumer } from '@candlestream/kafka';
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
    let stopped = false;
    const log = deps.logger.child({ component: 'follow-replays' });
    const crashed = (err: unknown): void => {
      if (!stopped) sendBack({ type: 'CRASHED', error: errorMessage(err) });
    };
    const consumer = new BatchConsumer(deps.kafka, {
      groupId: deps.replayGroupId,
      topics: [deps.replayStatus.name],
      fromBeginning: false,
      // POST /replays waits for the first status: keep it short.
      maxWaitTimeMs: 20,
      onCrash: crashed,
    });
    let refused = 0;
    consumer
      .start((batch) => {
        for (const m of batch.messages) {
          const decoded = decodeReplayStatus(m.value ?? '');
          if (!decoded.ok) {
            if (refused++ < 10)
              log.warn('replay status refused', { reason: decoded.reason, offset: m.offset });
            continue;
          }
          deps.replays.onStatus(decoded.value);
        }
        return Promise.resolve();
      })
      .catch(crashed);
    return () => {
      stopped = true;
      const stopping = consumer.stop();
      stopping.catch((err: unknown) => log.warn('consumer stop failed', { err }));
      deps.stops.add(stopping);
    };
  });
}
