import type { BackfillRequest } from '@candlestream/core';
import { decodeBackfillRequest } from '@candlestream/core';
import { consumeInActor } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { CoordinatorEvent, PlannedJob } from '../coordinator.machine.js';
import { planMinutes, planRequest } from '../planner.js';
import { endedDependencies } from './connect.js';
import type { Deps } from './deps.js';
import { announce } from './reporting.js';

/**
 * Records and plans one request. A job with nothing to fetch and nothing to wait on is done at
 * once; any other is handed to the machine. A repeated delivery of a planned job plans nothing
 * again (the machine ignores a job it already runs).
 */
export async function handleRequest(
  deps: Deps,
  request: BackfillRequest,
): Promise<PlannedJob | undefined> {
  const now = deps.clock.now();
  const { job } = await deps.jobs.create(request, now);
  const unplanned = job.status === 'queued' && job.progress.total === 0 && job.waitsOn.length === 0;
  if (!unplanned) {
    if (job.status === 'done' || job.status === 'failed') return undefined;
    return { job, endedDependencies: await endedDependencies(deps, job) };
  }
  const plan = await planRequest(deps.repository, deps.jobs, request, now);
  const total = planMinutes(plan);
  const nothingToDo = plan.ranges.length === 0 && plan.waitsOn.length === 0;
  const planned = await deps.jobs.update(
    job.id,
    {
      ranges: plan.ranges,
      waitsOn: plan.waitsOn,
      progress: { done: 0, total },
      ...(nothingToDo ? { status: 'done' as const, finishedAt: now } : {}),
    },
    now,
  );
  if (!planned) return undefined;
  deps.logger.info('backfill planned', {
    job: job.id,
    symbol: job.symbol,
    from: new Date(job.from).toISOString(),
    to: new Date(job.to).toISOString(),
    missingMinutes: total,
    ranges: plan.ranges.length,
    waitsOn: plan.waitsOn,
    requestedBy: request.requestedBy,
  });
  deps.counters.planned.inc(1, {
    plan: nothingToDo ? 'nothing_missing' : plan.ranges.length > 0 ? 'fetch' : 'wait',
  });
  await announce(deps, planned);
  if (nothingToDo) return undefined;
  return { job: planned, endedDependencies: await endedDependencies(deps, planned) };
}

/**
 * Consumes backfill-requests and plans each request (recorded before the offset is committed, so
 * a restart loses none). A malformed request is logged and skipped: nobody can act on it.
 */
export function requestsActor(deps: Deps) {
  return fromCallback<CoordinatorEvent>(({ sendBack }) => {
    const log = deps.logger.child({ component: 'requests' });
    return consumeInActor(deps.kafka, {
      fromBeginning: true,
      stops: deps.stops,
      crashed: (error) => sendBack({ type: 'CRASHED', error }),
      groupId: deps.groupId,
      topic: deps.topics.requests.name,
      log,
      handle: async (message, live) => {
        const decoded = decodeBackfillRequest(message.value ?? '');
        if (!decoded.ok) {
          log.warn('backfill request refused', { reason: decoded.reason, offset: message.offset });
          return;
        }
        const planned = await handleRequest(deps, decoded.value);
        if (planned && live()) sendBack({ type: 'JOB_PLANNED', planned });
      },
    });
  });
}
