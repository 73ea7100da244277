import { CHART_REPLAY_PREFIX, replayTopicName } from '@candlestream/core';
import { ensureTopics, listTopics } from '@candlestream/kafka';
import { connectService } from '@candlestream/runtime';
import { fromPromise } from 'xstate';
import type { ConnectOutput } from '../simulator.machine.js';
import type { Deps } from './deps.js';

/**
 * Broker reachable with the replay topics present, the database migrated; then the chart
 * sessions' topics already on the broker, which no session of this run hosts yet: a killed
 * previous run's, removed once as idle as any session.
 */
export function connectActor(deps: Deps) {
  return fromPromise<ConnectOutput>(async () => {
    await connectService(deps, () =>
      ensureTopics(deps.kafka, [deps.topics.commands, deps.topics.status]),
    );
    const prefix = replayTopicName(CHART_REPLAY_PREFIX);
    const orphanTopics = (await listTopics(deps.kafka)).filter((t) => t.startsWith(prefix));
    return { orphanTopics, at: deps.clock.now() };
  });
}
