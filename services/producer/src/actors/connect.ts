import { ensureTopics } from '@candlestream/kafka';
import { fromPromise } from 'xstate';
import type { Deps } from './deps.js';
import { resumePublishedPrices } from './resume-prices.js';

/**
 * The broker answers and tick-data exists (created with its partition count if missing). A
 * source that resumes prices gets the newest published ones, read once: after that the stream
 * keeps them, also across restarts of the source within the process.
 */
export function connectActor(deps: Deps) {
  return fromPromise<void>(async () => {
    const created = await ensureTopics(deps.kafka, [deps.topic]);
    if (created.length > 0) deps.logger.info('topics created', { topics: created });
    if (deps.source.resumesPrices && deps.lastPrices.size === 0) {
      await resumePublishedPrices(deps);
    }
    await deps.publisher.connect();
  });
}
