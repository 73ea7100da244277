import type { BackfillReport } from '@candlestream/core';
import { decodeBackfillReport, errorMessage } from '@candlestream/core';
import { BatchConsumer } from '@candlestream/kafka';
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
    let stopped = false;
    const consumer = new BatchConsumer(deps.kafka, {
      groupId: `${deps.groupId}.status`,
      topics: [deps.topics.status.name],
      fromBeginning: true,
      onCrash: (err) => {
        if (!stopped) sendBack({ type: 'CRASHED', error: errorMessage(err) });
      },
    });
    consumer
      .start(async (batch) => {
        for (const message of batch.messages) {
          const decoded = decodeBackfillReport(message.value ?? '');
          if (!decoded.ok) {
            log.warn('backfill report refused', { reason: decoded.reason, offset: message.offset });
            continue;
          }
          const report = decoded.value;
          if (report.reporter === 'coordinator') continue;
          if ((await recordReport(deps, report)) && !stopped) sendBack({ type: 'REPORT', report });
        }
      })
      .catch((err: unknown) => {
        if (!stopped) sendBack({ type: 'CRASHED', error: errorMessage(err) });
      });
    return () => {
      stopped = true;
      const stopping = consumer.stop();
      stopping.catch((err: unknown) => log.warn('consumer stop failed', { err }));
      deps.stops.add(stopping);
    };
  });
}
