import type { BackfillReport } from '@candlestream/core';
import { decodeBackfillReport } from '@candlestream/core';
import { consumeInActor } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { CoordinatorEvent } from '../coordinator.machine.js';
import type { Deps } from './deps.js';

/**
 * Records what a participant's report says about its job before the report's offset is
 * committed, so a coordinator killed right after loses none: progress always, and the end
 * (done from the dynamic consumer, failed from either). The job's actor hears of it next.
 */
export async function recordReport(deps: Deps, report: BackfillReport): Promise<boolean> {
  const job = await deps.jobs.get(report.id);
  if (!job || job.status === 'done' || job.status === 'failed') return false;
  const now = deps.clock.now();
  if (report.status === 'failed') {
    await deps.jobs.update(
      job.id,
      { status: 'failed', error: report.error ?? 'the job failed', finishedAt: now },
      now,
    );
  } else if (report.status === 'done' && report.reporter === 'dynamic-consumer') {
    await deps.jobs.update(
      job.id,
      {
        status: 'done',
        finishedAt: now,
        unavailable: report.unavailable ?? [],
        progress: { done: job.progress.total, total: job.progress.total },
      },
      now,
    );
  } else if (report.progress) {
    // The producer's count while fetching, the dynamic consumer's once it stores.
    const storing = report.reporter === 'dynamic-consumer';
    if (storing || job.status !== 'storing') {
      await deps.jobs.update(
        job.id,
        {
          progress: {
            done: Math.min(report.progress.done, job.progress.total),
            total: job.progress.total,
          },
        },
        now,
      );
    }
  }
  return true;
}

/** Consumes backfill-status for the producer's and the dynamic consumer's reports. */
export function reportsActor(deps: Deps) {
  return fromCallback<CoordinatorEvent>(({ sendBack }) => {
    const log = deps.logger.child({ component: 'reports' });
    return consumeInActor(deps.kafka, {
      fromBeginning: true,
      stops: deps.stops,
      crashed: (error) => sendBack({ type: 'CRASHED', error }),
      groupId: `${deps.groupId}.status`,
      topic: deps.topics.status.name,
      log,
      handle: async (message, live) => {
        const decoded = decodeBackfillReport(message.value ?? '');
        if (!decoded.ok) {
          log.warn('backfill report refused', { reason: decoded.reason, offset: message.offset });
          return;
        }
        const report = decoded.value;
        if (report.reporter === 'coordinator') return;
        if ((await recordReport(deps, report)) && live()) sendBack({ type: 'REPORT', report });
      },
    });
  });
}
