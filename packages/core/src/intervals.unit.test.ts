import { describe, expect, it } from 'vitest';
import type { Interval } from './intervals.js';
import {
  bucketsBetween,
  ceilBucket,
  dividesInterval,
  floorBucket,
  INTERVAL_MS,
  INTERVALS,
  isBucketAligned,
  nextBucket,
  parseInterval,
  parseIntervalOrResolution,
  parseResolution,
  RESOLUTIONS,
  toResolution,
} from './intervals.js';

const utc = (iso: string): number => Date.parse(iso);

describe('interval names and TradingView resolutions', () => {
  it('parses every interval name and refuses others', () => {
    for (const interval of INTERVALS) expect(parseInterval(interval)).toBe(interval);
    expect(parseInterval(' 1h ')).toBe('1h');
    for (const bad of ['2m', '1M', '60', '', '1 m', 'H']) {
      expect(() => parseInterval(bad)).toThrow(/is not one of 1m, 5m/);
    }
  });

  it.each([
    ['1', '1m'],
    ['5', '5m'],
    ['15', '15m'],
    ['30', '30m'],
    ['60', '1h'],
    ['240', '4h'],
    ['1D', '1d'],
    ['D', '1d'],
    ['1W', '1w'],
    ['W', '1w'],
  ] as const)('maps resolution %s to %s', (resolution, interval) => {
    expect(parseResolution(resolution)).toBe(interval);
  });

  it('refuses resolutions it does not serve', () => {
    for (const bad of ['2', '1H', 'M', '1M', '120', '']) {
      expect(() => parseResolution(bad)).toThrow(/resolution/);
    }
  });

  it('parseIntervalOrResolution takes both spellings and names both in its refusal', () => {
    for (const interval of INTERVALS) expect(parseIntervalOrResolution(interval)).toBe(interval);
    expect(parseIntervalOrResolution('1D')).toBe('1d');
    expect(parseIntervalOrResolution(' w ')).toBe('1w');
    expect(parseIntervalOrResolution('240')).toBe('4h');
    expect(() => parseIntervalOrResolution('2m')).toThrow(
      'interval "2m" is not one of 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w or a TradingView resolution (1, 5, 15, 30, 60, 240, 1D, 1W)',
    );
  });

  it('round-trips every interval through its resolution', () => {
    for (const interval of INTERVALS)
      expect(parseResolution(toResolution(interval))).toBe(interval);
    expect(RESOLUTIONS).toEqual(['1', '5', '15', '30', '60', '240', '1D', '1W']);
  });
});

describe('UTC buckets', () => {
  it('puts a trade exactly on a boundary in the new bucket', () => {
    const boundary = utc('2024-05-01T10:15:00.000Z');
    expect(floorBucket(boundary, '1m')).toBe(boundary);
    expect(floorBucket(boundary - 1, '1m')).toBe(utc('2024-05-01T10:14:00.000Z'));
    expect(floorBucket(boundary, '15m')).toBe(boundary);
    expect(floorBucket(boundary - 1, '15m')).toBe(utc('2024-05-01T10:00:00.000Z'));
  });

  it('floors hours, four hours and days in UTC', () => {
    const t = utc('2024-03-10T23:59:59.999Z');
    expect(floorBucket(t, '1h')).toBe(utc('2024-03-10T23:00:00Z'));
    expect(floorBucket(t, '4h')).toBe(utc('2024-03-10T20:00:00Z'));
    expect(floorBucket(t, '1d')).toBe(utc('2024-03-10T00:00:00Z'));
    expect(floorBucket(utc('2024-03-11T00:00:00Z'), '1d')).toBe(utc('2024-03-11T00:00:00Z'));
  });

  it('opens weeks on Monday 00:00 UTC', () => {
    // 2024-01-01 was a Monday.
    expect(floorBucket(utc('2024-01-01T00:00:00Z'), '1w')).toBe(utc('2024-01-01T00:00:00Z'));
    expect(floorBucket(utc('2024-01-07T23:59:59.999Z'), '1w')).toBe(utc('2024-01-01T00:00:00Z'));
    expect(floorBucket(utc('2024-01-08T00:00:00Z'), '1w')).toBe(utc('2024-01-08T00:00:00Z'));
    expect(floorBucket(utc('2024-01-10T12:00:00Z'), '1w')).toBe(utc('2024-01-08T00:00:00Z'));
  });

  it('starts the week that crosses a year in the old year', () => {
    // 2025-01-01 was a Wednesday; its week opened Monday 2024-12-30.
    expect(floorBucket(utc('2025-01-01T08:00:00Z'), '1w')).toBe(utc('2024-12-30T00:00:00Z'));
    expect(floorBucket(utc('2024-12-31T23:59:59Z'), '1w')).toBe(utc('2024-12-30T00:00:00Z'));
    expect(floorBucket(utc('2025-01-05T23:59:59.999Z'), '1w')).toBe(utc('2024-12-30T00:00:00Z'));
    expect(floorBucket(utc('2025-01-06T00:00:00Z'), '1w')).toBe(utc('2025-01-06T00:00:00Z'));
    // 2021-01-01 was a Friday.
    expect(floorBucket(utc('2021-01-01T00:00:00Z'), '1w')).toBe(utc('2020-12-28T00:00:00Z'));
  });

  it('floors instants before the epoch downwards', () => {
    expect(floorBucket(-1, '1m')).toBe(-60_000);
    // 1969-12-31 was a Wednesday; its week opened Monday 1969-12-29.
    expect(floorBucket(utc('1969-12-31T12:00:00Z'), '1w')).toBe(utc('1969-12-29T00:00:00Z'));
  });

  it('holds the bucket laws for many instants and every interval', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 2_000; i++) {
      const ts = Math.floor(utc('2015-01-01T00:00:00Z') + random() * 15 * 365 * 86_400_000);
      for (const interval of INTERVALS) {
        const floor = floorBucket(ts, interval);
        expect(floor).toBeLessThanOrEqual(ts);
        expect(ts).toBeLessThan(floor + INTERVAL_MS[interval]);
        expect(isBucketAligned(floor, interval)).toBe(true);
        expect(nextBucket(ts, interval)).toBe(floor + INTERVAL_MS[interval]);
        const ceil = ceilBucket(ts, interval);
        expect(ceil === ts || ceil === floor + INTERVAL_MS[interval]).toBe(true);
        if (interval === '1w') expect(new Date(floor).getUTCDay()).toBe(1);
      }
    }
  });

  it('ceils to the next boundary unless already on one', () => {
    expect(ceilBucket(utc('2024-01-01T00:00:00Z'), '1h')).toBe(utc('2024-01-01T00:00:00Z'));
    expect(ceilBucket(utc('2024-01-01T00:00:00.001Z'), '1h')).toBe(utc('2024-01-01T01:00:00Z'));
    expect(ceilBucket(utc('2024-01-03T00:00:00Z'), '1w')).toBe(utc('2024-01-08T00:00:00Z'));
  });

  it('lists the buckets overlapping a range', () => {
    const from = utc('2024-01-01T00:30:00Z');
    const to = utc('2024-01-01T03:00:00Z');
    expect(bucketsBetween(from, to, '1h')).toEqual([
      utc('2024-01-01T00:00:00Z'),
      utc('2024-01-01T01:00:00Z'),
      utc('2024-01-01T02:00:00Z'),
    ]);
    expect(bucketsBetween(to, to, '1h')).toEqual([]);
  });

  it('knows which intervals roll up into which', () => {
    const yes: [Interval, Interval][] = [
      ['1m', '1w'],
      ['5m', '15m'],
      ['15m', '1h'],
      ['30m', '4h'],
      ['1h', '1d'],
      ['4h', '1w'],
      ['1d', '1w'],
      ['1h', '1h'],
    ];
    const no: [Interval, Interval][] = [
      ['1h', '30m'],
      ['1w', '1d'],
      ['4h', '1h'],
    ];
    for (const [a, b] of yes) expect(dividesInterval(a, b), `${a}->${b}`).toBe(true);
    for (const [a, b] of no) expect(dividesInterval(a, b), `${a}->${b}`).toBe(false);
  });
});
