import type { Bar } from './bars.js';
import { barProblem } from './bars.js';
import type { Interval } from './intervals.js';
import { INTERVAL_MS, isBucketAligned } from './intervals.js';
import type { EpochMs } from './time.js';
import { toIso } from './time.js';

export type SeriesIssue =
  | { kind: 'misaligned'; index: number; time: EpochMs; message: string }
  | { kind: 'out-of-order'; index: number; time: EpochMs; previous: EpochMs; message: string }
  | { kind: 'overlap'; index: number; time: EpochMs; previous: EpochMs; message: string }
  | {
      kind: 'gap';
      index: number;
      time: EpochMs;
      previous: EpochMs;
      missing: number;
      message: string;
    }
  | { kind: 'invalid-bar'; index: number; time: EpochMs; message: string };

export type SeriesIssueKind = SeriesIssue['kind'];

export interface SeriesCheckOptions {
  /**
   * Whether gaps count against `ok`. A series is gapless only where data exists, so callers
   * that know a range has no trades may allow gaps; they are reported either way.
   */
  gaps?: 'error' | 'allow';
}

export interface SeriesReport {
  ok: boolean;
  issues: SeriesIssue[];
  /** Issue counts by kind, for quick assertions and logs. */
  counts: Record<SeriesIssueKind, number>;
}

/**
 * Checks a bar series against the platform's rules: bars on bucket boundaries, strictly
 * ascending, one per bucket, no missing bucket between two bars, OHLC invariants held.
 * It is the oracle later tests use on anything that returns bars.
 */
export function checkSeries(
  bars: readonly Bar[],
  interval: Interval,
  options: SeriesCheckOptions = {},
): SeriesReport {
  const width = INTERVAL_MS[interval];
  const issues: SeriesIssue[] = [];
  bars.forEach((bar, index) => {
    const time = bar.time;
    const problem = barProblem(bar);
    if (problem) {
      issues.push({
        kind: 'invalid-bar',
        index,
        time,
        message: `bar at ${toIso(time)} ${problem}`,
      });
    }
    if (!isBucketAligned(time, interval)) {
      issues.push({
        kind: 'misaligned',
        index,
        time,
        message: `bar at ${toIso(time)} is not on a ${interval} boundary`,
      });
    }
    if (index === 0) return;
    const previous = bars[index - 1]!.time;
    const step = time - previous;
    if (step < 0) {
      issues.push({
        kind: 'out-of-order',
        index,
        time,
        previous,
        message: `bar at ${toIso(time)} comes after ${toIso(previous)}`,
      });
    } else if (step < width) {
      issues.push({
        kind: 'overlap',
        index,
        time,
        previous,
        message:
          step === 0
            ? `two bars at ${toIso(time)}`
            : `bar at ${toIso(time)} overlaps the ${interval} bar at ${toIso(previous)}`,
      });
    } else if (step > width) {
      const missing = Math.ceil(step / width) - 1;
      issues.push({
        kind: 'gap',
        index,
        time,
        previous,
        missing,
        message: `${missing} ${interval} bar(s) missing between ${toIso(previous)} and ${toIso(time)}`,
      });
    }
  });
  const counts: Record<SeriesIssueKind, number> = {
    misaligned: 0,
    'out-of-order': 0,
    overlap: 0,
    gap: 0,
    'invalid-bar': 0,
  };
  for (const issue of issues) counts[issue.kind]++;
  const allowGaps = options.gaps === 'allow';
  const ok = issues.every((i) => allowGaps && i.kind === 'gap');
  return { ok, issues, counts };
}

export interface BarDifference {
  time: EpochMs;
  message: string;
}

export interface CompareBarsOptions {
  /**
   * Relative tolerance for volume, for volumes that went through a different summation path
   * (a roll-up, a database SUM). OHLC is always compared exactly. Default 0: bit-identical.
   */
  volumeRelTol?: number;
}

/** Compares two series bar by bar; an empty result means equal. */
export function diffBars(
  expected: readonly Bar[],
  actual: readonly Bar[],
  options: CompareBarsOptions = {},
): BarDifference[] {
  const tol = options.volumeRelTol ?? 0;
  const diffs: BarDifference[] = [];
  const byTime = new Map(actual.map((b) => [b.time, b]));
  const expectedTimes = new Set(expected.map((b) => b.time));
  for (const want of expected) {
    const got = byTime.get(want.time);
    const at = toIso(want.time);
    if (!got) {
      diffs.push({ time: want.time, message: `missing bar at ${at}` });
      continue;
    }
    for (const field of ['open', 'high', 'low', 'close'] as const) {
      if (got[field] !== want[field]) {
        diffs.push({
          time: want.time,
          message: `${field} at ${at}: ${got[field]} != ${want[field]}`,
        });
      }
    }
    const scale = Math.max(Math.abs(want.volume), Math.abs(got.volume));
    if (Math.abs(got.volume - want.volume) > tol * scale) {
      diffs.push({ time: want.time, message: `volume at ${at}: ${got.volume} != ${want.volume}` });
    }
  }
  for (const got of actual) {
    if (!expectedTimes.has(got.time)) {
      diffs.push({ time: got.time, message: `unexpected bar at ${toIso(got.time)}` });
    }
  }
  return diffs;
}
