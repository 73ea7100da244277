import { AppError } from '@candlestream/core';
import { ensureTopics } from '@candlestream/kafka';
import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/**
 * Broker reachable, the fixed topics present, the database migrated: the jobs have somewhere to
 * write. The jobs' own topics are the coordinator's to create (and delete).
 */
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
