import { errorMessage } from '@candlestream/core';
import { deleteTopics } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { CoordinatorEvent } from '../coordinator.machine.js';
import type { Deps } from './deps.js';

/** Deletes the topics of jobs that ended more than `topicTtlMs` ago; returns how many. */
export async function sweepTopics(deps: Deps): Promise<number> {
  const now = deps.clock.now();
  const ended = await deps.jobs.topicsToDelete(now - deps.topicTtlMs);
  if (ended.length === 0) return 0;
  const deleted = await deleteTopics(
    deps.kafka,
    ended.map((j) => j.topic!),
  );
  for (const job of ended) await deps.jobs.update(job.id, { topicDeletedAt: now }, now);
  deps.counters.topicsDeleted.inc(ended.length);
  deps.logger.info('job topics deleted', { topics: deleted, jobs: ended.length });
  return ended.length;
}

/** Every `sweepIntervalMs`, deletes ended jobs' topics; a failure waits for the next turn. */
export function sweeperActor(deps: Deps) {
  return fromCallback<CoordinatorEvent>(({ sendBack }) => {
    let running = false;
    const timer = deps.clock.setInterval(() => {
      if (running) return;
      running = true;
      sweepTopics(deps)
        .then(() => sendBack({ type: 'RECOVERED', check: 'sweeper' }))
        .catch((err: unknown) =>
          sendBack({ type: 'DEGRADED', check: 'sweeper', problem: errorMessage(err) }),
        )
        .finally(() => (running = false));
    }, deps.sweepIntervalMs);
    return () => deps.clock.clearInterval(timer);
  });
}
