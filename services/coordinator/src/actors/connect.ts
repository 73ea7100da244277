import type { BackfillStatus } from '@candlestream/core';
import { ENDED_BACKFILL_STATUSES } from '@candlestream/core';
import type { BackfillJob } from '@candlestream/db';
import { ensureTopics } from '@candlestream/kafka';
import { connectServiceActor } from '@candlestream/runtime';
import { fromPromise } from 'xstate';
import type { PlannedJob } from '../coordinator.machine.js';
import type { Deps } from './deps.js';

/** Broker reachable, the backfill topics present, the database migrated. */
export function connectActor(deps: Deps) {
  return connectServiceActor(deps, () => ensureTopics(deps.kafka, Object.values(deps.topics)));
}

/** How each of `job`'s dependencies ended, for those that have. */
export async function endedDependencies(
  deps: Deps,
  job: BackfillJob,
): Promise<Record<string, BackfillStatus>> {
  const ended: Record<string, BackfillStatus> = {};
  for (const id of job.waitsOn) {
    const dependency = await deps.jobs.get(id);
    // A dependency that is gone cannot be waited for: count it as ended without fault.
    const status = dependency?.status ?? 'done';
    if (ENDED_BACKFILL_STATUSES.includes(status)) ended[id] = status;
  }
  return ended;
}

/** The jobs a previous run left unfinished, oldest first: each resumes where it was recorded. */
export function restoreActor(deps: Deps) {
  return fromPromise<PlannedJob[]>(async () => {
    const active = await deps.jobs.active();
    const planned: PlannedJob[] = [];
    for (const job of active) {
      // Recorded but never planned (the coordinator stopped in between): the requests consumer
      // gets that request again, since its offset was not committed.
      if (job.status === 'queued' && job.progress.total === 0 && job.waitsOn.length === 0) continue;
      planned.push({ job, endedDependencies: await endedDependencies(deps, job) });
    }
    if (planned.length > 0) {
      deps.logger.info('jobs resumed', {
        jobs: planned.map((p) => ({ id: p.job.id, symbol: p.job.symbol, status: p.job.status })),
      });
    }
    return planned;
  });
}
