import type { BackfillReport, BackfillStatus } from '@candlestream/core';
import { BACKFILL_MESSAGE_VERSION, encodeBackfillMessage } from '@candlestream/core';
import type { BackfillJob } from '@candlestream/db';
import type { Deps } from './deps.js';

/** The coordinator's word on a job, on backfill-status (key = job id): the job as recorded. */
export async function announce(
  deps: Deps,
  job: BackfillJob,
  status: BackfillStatus = job.status,
): Promise<void> {
  const report: BackfillReport = {
    v: BACKFILL_MESSAGE_VERSION,
    id: job.id,
    symbol: job.symbol,
    status,
    reporter: 'coordinator',
    at: deps.clock.now(),
    progress: job.progress,
    from: job.from,
    to: job.to,
    ...(job.error ? { error: job.error } : {}),
    ...(job.unavailable.length > 0 ? { unavailable: job.unavailable } : {}),
  };
  await deps.publisher.send(deps.topics.status.name, [
    { key: job.id, value: encodeBackfillMessage(report) },
  ]);
}
