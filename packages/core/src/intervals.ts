import { invalidArgument } from './errors.js';
import type { EpochMs } from './time.js';
import { DAY_MS, FIRST_MONDAY_MS, HOUR_MS, MINUTE_MS, WEEK_MS, floorMod } from './time.js';

export const INTERVALS = ['1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w'] as const;
export type Interval = (typeof INTERVALS)[number];

export const INTERVAL_MS: Readonly<Record<Interval, number>> = {
  '1m': MINUTE_MS,
  '5m': 5 * MINUTE_MS,
  '15m': 15 * MINUTE_MS,
  '30m': 30 * MINUTE_MS,
  '1h': HOUR_MS,
  '4h': 4 * HOUR_MS,
  '1d': DAY_MS,
  '1w': WEEK_MS,
};

/** TradingView resolutions accepted on input, and the interval each names. */
const RESOLUTION_TO_INTERVAL: Readonly<Record<string, Interval>> = {
  '1': '1m',
  '5': '5m',
  '15': '15m',
  '30': '30m',
  '60': '1h',
  '240': '4h',
  '1D': '1d',
  D: '1d',
  '1W': '1w',
  W: '1w',
};

/** The resolution we answer with for each interval (TradingView's preferred spellings). */
const INTERVAL_TO_RESOLUTION: Readonly<Record<Interval, string>> = {
  '1m': '1',
  '5m': '5',
  '15m': '15',
  '30m': '30',
  '1h': '60',
  '4h': '240',
  '1d': '1D',
  '1w': '1W',
};

export const RESOLUTIONS: readonly string[] = Object.values(INTERVAL_TO_RESOLUTION);

export function isInterval(value: unknown): value is Interval {
  return typeof value === 'string' && (INTERVALS as readonly string[]).includes(value);
}

/** Parses an interval name (`1m` … `1w`). */
export function parseInterval(input: string): Interval {
  const text = typeof input === 'string' ? input.trim() : '';
  if (isInterval(text)) return text;
  throw invalidArgument(`interval ${JSON.stringify(input)} is not one of ${INTERVALS.join(', ')}`);
}

/** Parses a TradingView resolution (`1 5 15 30 60 240 1D D 1W W`) into an interval. */
export function parseResolution(input: string): Interval {
  const text = typeof input === 'string' ? input.trim().toUpperCase() : '';
  const interval = RESOLUTION_TO_INTERVAL[text];
  if (interval) return interval;
  throw invalidArgument(
    `resolution ${JSON.stringify(input)} is not one of ${Object.keys(RESOLUTION_TO_INTERVAL).join(', ')}`,
  );
}

/**
 * An interval name (`1m` … `1w`) or, failing that, a TradingView resolution (`1`, `60`, `1D`, `W`
 * …), so /ohlcv and /stream take what the chart and UDF send.
 */
export function parseIntervalOrResolution(input: string): Interval {
  const text = typeof input === 'string' ? input.trim() : '';
  if (isInterval(text)) return text;
  const interval = RESOLUTION_TO_INTERVAL[text.toUpperCase()];
  if (interval) return interval;
  const shown = JSON.stringify(typeof input === 'string' ? input.slice(0, 16) : input);
  throw invalidArgument(
    `interval ${shown} is not one of ${INTERVALS.join(', ')} ` +
      `or a TradingView resolution (${RESOLUTIONS.join(', ')})`,
  );
}

export function toResolution(interval: Interval): string {
  return INTERVAL_TO_RESOLUTION[interval];
}

/** Weeks open on Monday 00:00 UTC; every other interval is aligned to the epoch. */
function alignmentOffset(interval: Interval): number {
  return interval === '1w' ? FIRST_MONDAY_MS : 0;
}

/** The open time of the bucket holding `ts`. A trade exactly on a boundary opens the new bucket. */
export function floorBucket(ts: EpochMs, interval: Interval): EpochMs {
  const width = INTERVAL_MS[interval];
  return ts - floorMod(ts - alignmentOffset(interval), width);
}

/** The first bucket boundary at or after `ts`. */
export function ceilBucket(ts: EpochMs, interval: Interval): EpochMs {
  const floor = floorBucket(ts, interval);
  return floor === ts ? ts : floor + INTERVAL_MS[interval];
}

/** The open time of the bucket after the one holding `ts`; also the end (exclusive) of that bucket. */
export function nextBucket(ts: EpochMs, interval: Interval): EpochMs {
  return floorBucket(ts, interval) + INTERVAL_MS[interval];
}

export function isBucketAligned(ts: EpochMs, interval: Interval): boolean {
  return floorBucket(ts, interval) === ts;
}

/** Open times of every bucket that overlaps [from, to), ascending. */
export function bucketsBetween(from: EpochMs, to: EpochMs, interval: Interval): EpochMs[] {
  const out: EpochMs[] = [];
  for (let t = floorBucket(from, interval); t < to; t += INTERVAL_MS[interval]) out.push(t);
  return out;
}

/**
 * True when every bucket of `coarse` is a whole number of `fine` buckets, so `fine` bars roll up
 * into `coarse` bars exactly (1m into anything; 1d into 1w since weeks open on a day boundary).
 */
export function dividesInterval(fine: Interval, coarse: Interval): boolean {
  const fineMs = INTERVAL_MS[fine];
  const coarseMs = INTERVAL_MS[coarse];
  return (
    coarseMs >= fineMs &&
    coarseMs % fineMs === 0 &&
    floorMod(alignmentOffset(coarse) - alignmentOffset(fine), fineMs) === 0
  );
}
