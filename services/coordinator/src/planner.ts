import type { BackfillRequest, TimeRange } from '@candlestream/core';
import { minutesIn, missingRanges, subtractRanges } from '@candlestream/core';
import type { BackfillJob, BackfillJobs, Repository } from '@candlestream/db';

export interface Plan {
  /** What this job fetches: missing minutes no running job is fetching. */
  ranges: TimeRange[];
  /** Running jobs fetching part of what is missing here. */
  waitsOn: string[];
}

const overlaps = (a: TimeRange, b: TimeRange): boolean => a.from < b.to && b.from < a.to;

/**
 * What a request must fetch: its missing minutes (stored minutes and ranges done jobs fetched are
 * not missing; core's missingRanges leaves a recent tail to the live stream), minus what running
 * jobs already fetch, which it waits on instead. Requests are planned one at a time (one consumer,
 * one partition), so two requests never both claim a minute.
 */
export async function planRequest(
  repository: Repository,
  jobs: BackfillJobs,
  request: Pick<BackfillRequest, 'id' | 'symbol' | 'from' | 'to'>,
  now: number,
): Promise<Plan> {
  const wanted = { from: request.from, to: request.to };
  const [stored, fetched, active] = await Promise.all([
    repository.coveredRanges(request.symbol, request.from, request.to),
    jobs.fetchedRanges(request.symbol, request.from, request.to),
    jobs.active(request.symbol),
  ]);
  const missing = missingRanges(wanted, [...stored, ...fetched], now);
  const others = active.filter((j: BackfillJob) => j.id !== request.id);
  const waitsOn = others
    .filter((j) => j.ranges.some((r) => missing.some((m) => overlaps(r, m))))
    .map((j) => j.id);
  const claimed = others.flatMap((j) => j.ranges);
  const ranges = missing.flatMap((m) => subtractRanges(m, claimed));
  return { ranges, waitsOn };
}

/** Minutes a plan fetches. */
export const planMinutes = (plan: Plan): number => minutesIn(plan.ranges);
