import { AppError } from '@candlestream/core';
import { ensureTopics } from '@candlestream/kafka';
import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** Storage migrated and the topics it follows and publishes on present (created if need be). */
export function connectActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.stops.settled();
    try {
      await deps.repository.backend();
    } catch (err) {
      throw AppError.from(err, 'UNAVAILABLE');
    }
    await ensureTopics(deps.kafka, [
      deps.barUpdates,
      deps.backfillRequests,
      deps.backfillStatus,
      deps.replayCommands,
      deps.replayStatus,
    ]);
  });
}
