import { AppError } from '@candlestream/core';
import { ensureTopics } from '@candlestream/kafka';
import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** Storage migrated and the bar-updates topic present (created if the consumer has not yet). */
export function connectActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.stops.settled();
    try {
      await deps.repository.backend();
    } catch (err) {
      throw AppError.from(err, 'UNAVAILABLE');
    }
    await ensureTopics(deps.kafka, [deps.barUpdates]);
  });
}
