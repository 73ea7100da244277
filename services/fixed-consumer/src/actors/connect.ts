import { AppError } from '@candlestream/core';
import { ensureTopics } from '@candlestream/kafka';
import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** Broker reachable, topics present, database migrated: the consumer has somewhere to write. */
export function connectActor(deps: Deps) {
  return fromPromise<void>(async () => {
    await deps.stops.settled();
    const created = await ensureTopics(deps.kafka, Object.values(deps.topics));
    if (created.length > 0) deps.logger.info('topics created', { topics: created });
    await deps.publisher.connect();
    try {
      await deps.repository.backend();
    } catch (err) {
      throw AppError.from(err, 'UNAVAILABLE');
    }
  });
}

/** Live candles rebuilt from the stored trades and minutes before any message is consumed. */
export function restoreActor(deps: Deps) {
  return fromPromise<void>(async ({ signal }) => {
    await deps.pipeline.restore(signal);
  });
}
