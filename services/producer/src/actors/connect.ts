import { ensureTopics } from '@candlestream/kafka';
import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';

/** The broker answers and tick-data exists (created with its partition count if missing). */
export function connectActor(deps: Deps) {
  return fromPromise<void>(async () => {
    const created = await ensureTopics(deps.kafka, [deps.topic]);
    if (created.length > 0) deps.logger.info('topics created', { topics: created });
    await deps.publisher.connect();
  });
}
