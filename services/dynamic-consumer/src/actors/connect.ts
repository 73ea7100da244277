import { ensureTopics } from '@candlestream/kafka';
import { connectServiceActor } from '@candlestream/runtime';
import type { Deps } from './deps.js';

/**
 * Broker reachable, the fixed topics present, the database migrated: the jobs have somewhere to
 * write. The jobs' own topics are the coordinator's to create (and delete).
 */
export function connectActor(deps: Deps) {
  return connectServiceActor(deps, () => ensureTopics(deps.kafka, Object.values(deps.topics)));
}
