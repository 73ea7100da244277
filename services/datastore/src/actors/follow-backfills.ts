import type { BackfillReport } from '@candlestream/core';
import { decodeBackfillReport } from '@candlestream/core';
import { consumeInActor } from '@candlestream/kafka';
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
    const log = deps.logger.child({ component: 'follow-backfills' });
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
    return consumeInActor(deps.kafka, {
      groupId: deps.backfillGroupId,
      topic: deps.backfillStatus.name,
      fromBeginning: false,
      maxWaitTimeMs: 100,
      log,
      stops: deps.stops,
      crashed: (error) => sendBack({ type: 'CRASHED', error }),
      handle: async (m) => {
        const decoded = decodeBackfillReport(m.value ?? '');
        if (!decoded.ok) {
          if (refused++ < 10)
            log.warn('backfill report refused', { reason: decoded.reason, offset: m.offset });
          return;
        }
        const report = decoded.value;
        if (report.reporter === 'coordinator' && report.status === 'done') await announce(report);
      },
    });
  });
}
