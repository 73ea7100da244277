import type { BackfillReport } from '@candlestream/core';
import { decodeBackfillReport, errorMessage } from '@candlestream/core';
import { BatchConsumer } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { DatastoreEvent } from '../datastore.machine.js';
import type { Deps } from './deps.js';

/**
 * Follows backfill-status from now on (its own group, newest offsets: a restarted datastore does
 * not replay old jobs to its clients) and hands every job the coordinator reports done to the
 * live view, which tells /stream. The coordinator's reports are the job's state
 * (docs/BACKFILLS.md); the others' are parts of it. A crash is reported, never thrown.
 */
export function followBackfillsActor(deps: Deps) {
  return fromCallback<DatastoreEvent>(({ sendBack }) => {
    let stopped = false;
    const log = deps.logger.child({ component: 'follow-backfills' });
    const crashed = (err: unknown): void => {
      if (!stopped) sendBack({ type: 'CRASHED', error: errorMessage(err) });
    };
    const consumer = new BatchConsumer(deps.kafka, {
      groupId: deps.backfillGroupId,
      topics: [deps.backfillStatus.name],
      fromBeginning: false,
      maxWaitTimeMs: 100,
      onCrash: crashed,
    });
    const announce = async (report: BackfillReport): Promise<void> => {
      let { from, to } = report;
      if (from === undefined || to === undefined) {
        const job = await deps.backfillJobs.get(report.id);
        if (!job) {
          log.warn('done job not found', { id: report.id });
          return;
        }
        ({ from, to } = job);
      }
      deps.live.announceHistory({
        symbol: report.symbol,
        backfill: { id: report.id, status: report.status },
        from,
        to,
      });
    };
    let refused = 0;
    consumer
      .start(async (batch) => {
        for (const m of batch.messages) {
          const decoded = decodeBackfillReport(m.value ?? '');
          if (!decoded.ok) {
            if (refused++ < 10)
              log.warn('backfill report refused', { reason: decoded.reason, offset: m.offset });
            continue;
          }
          const report = decoded.value;
          if (report.reporter === 'coordinator' && report.status === 'done') await announce(report);
        }
      })
      .catch(crashed);
    return () => {
      stopped = true;
      // Not awaited here (cleanup is synchronous); connect and shutdown await deps.stops.
      const stopping = consumer.stop();
      stopping.catch((err: unknown) => log.warn('consumer stop failed', { err }));
      deps.stops.add(stopping);
    };
  });
}
