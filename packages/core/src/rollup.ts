import type { Bar } from './bars.js';
import { invalidArgument } from './errors.js';
import { ExactSum } from './exact-sum.js';
import type { Interval } from './intervals.js';
import { dividesInterval, floorBucket, isBucketAligned } from './intervals.js';
import type { EpochMs } from './time.js';

interface Acc {
  time: EpochMs;
  first: Bar;
  last: Bar;
  high: number;
  low: number;
  volume: ExactSum;
}

/**
 * Rolls bars of one symbol up to a coarser interval (1m to 1h, 1h to 1d, 1d to 1w...): open of
 * the earliest bar, close of the latest, extreme highs and lows, volumes summed exactly.
 * Input may be in any order; two bars with the same time are an overlap and refused, as are bars
 * not aligned to `from`. Output is ascending.
 *
 * Volume note: each input volume was already rounded once, so a rolled-up volume can differ from
 * the volume aggregated straight from the trades by a few units in the last place; OHLC is exact.
 */
export function rollupBars(bars: Iterable<Bar>, from: Interval, to: Interval): Bar[] {
  if (!dividesInterval(from, to)) {
    throw invalidArgument(
      `cannot roll ${from} bars up to ${to}: ${to} is not a whole number of ${from}`,
    );
  }
  const groups = new Map<EpochMs, Acc>();
  const seen = new Set<EpochMs>();
  for (const bar of bars) {
    if (!isBucketAligned(bar.time, from)) {
      throw invalidArgument(`bar at ${new Date(bar.time).toISOString()} is not aligned to ${from}`);
    }
    if (seen.has(bar.time)) {
      throw invalidArgument(`two ${from} bars at ${new Date(bar.time).toISOString()}`);
    }
    seen.add(bar.time);
    const time = floorBucket(bar.time, to);
    const acc = groups.get(time);
    if (!acc) {
      groups.set(time, {
        time,
        first: bar,
        last: bar,
        high: bar.high,
        low: bar.low,
        volume: new ExactSum().add(bar.volume),
      });
      continue;
    }
    if (bar.time < acc.first.time) acc.first = bar;
    if (bar.time > acc.last.time) acc.last = bar;
    if (bar.high > acc.high) acc.high = bar.high;
    if (bar.low < acc.low) acc.low = bar.low;
    acc.volume.add(bar.volume);
  }
  return [...groups.values()]
    .sort((a, b) => a.time - b.time)
    .map((acc) => ({
      time: acc.time,
      open: acc.first.open,
      high: acc.high,
      low: acc.low,
      close: acc.last.close,
      volume: acc.volume.value(),
    }));
}
