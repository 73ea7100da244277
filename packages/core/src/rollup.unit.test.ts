import { describe, expect, it } from 'vitest';
import { aggregateTicks } from './aggregator.js';
import type { Bar } from './bars.js';
import { INTERVALS } from './intervals.js';
import { rollupBars } from './rollup.js';
import { checkSeries, diffBars } from './series.js';
import type { MarketSymbol } from './symbols.js';
import { randomTicks, seededRandom, shuffled } from './testing.js';

const BTC = 'BTC-USD' as MarketSymbol;
const utc = (iso: string): number => Date.parse(iso);

function bar(
  time: number,
  open: number,
  high: number,
  low: number,
  close: number,
  volume: number,
): Bar {
  return { time, open, high, low, close, volume };
}

describe('rollupBars', () => {
  it('rolls a 1m series up to 1h equal to aggregating the trades straight to 1h', () => {
    const ticks = randomTicks({
      seed: 21,
      count: 20_000,
      from: utc('2024-02-01T00:00:00Z'),
      spanMs: 6 * 3_600_000,
    });
    const minutes = aggregateTicks(ticks, '1m').get(BTC)!;
    const direct = aggregateTicks(ticks, '1h').get(BTC)!;
    const rolled = rollupBars(minutes, '1m', '1h');
    expect(rolled).toHaveLength(6);
    // OHLC exactly; volume within the rounding of 60 already-rounded partial sums.
    expect(diffBars(direct, rolled, { volumeRelTol: 1e-12 })).toEqual([]);
    expect(rolled.map(({ volume: _v, ...ohlc }) => ohlc)).toEqual(
      direct.map(({ volume: _v, ...ohlc }) => ohlc),
    );
  });

  it('agrees with direct aggregation from 1m to every larger interval', () => {
    const ticks = randomTicks({
      seed: 22,
      count: 8_000,
      from: utc('2024-12-20T00:00:00Z'),
      spanMs: 21 * 86_400_000,
    });
    const minutes = aggregateTicks(ticks, '1m').get(BTC)!;
    for (const interval of INTERVALS) {
      const rolled = rollupBars(minutes, '1m', interval);
      expect(
        diffBars(aggregateTicks(ticks, interval).get(BTC)!, rolled, { volumeRelTol: 1e-12 }),
        interval,
      ).toEqual([]);
      expect(checkSeries(rolled, interval, { gaps: 'allow' }).ok).toBe(true);
    }
  });

  it('rolls days into Monday weeks across a year boundary', () => {
    const days = [
      bar(utc('2024-12-28T00:00:00Z'), 10, 12, 9, 11, 1), // Saturday
      bar(utc('2024-12-29T00:00:00Z'), 11, 13, 10, 12, 2), // Sunday
      bar(utc('2024-12-30T00:00:00Z'), 12, 20, 11, 19, 3), // Monday: a new week
      bar(utc('2025-01-01T00:00:00Z'), 19, 25, 5, 24, 4),
      bar(utc('2025-01-05T00:00:00Z'), 24, 26, 23, 25, 5), // Sunday: last day of that week
      bar(utc('2025-01-06T00:00:00Z'), 25, 27, 24, 26, 6), // Monday
    ];
    expect(rollupBars(shuffled(days, seededRandom(1)), '1d', '1w')).toEqual([
      bar(utc('2024-12-23T00:00:00Z'), 10, 13, 9, 12, 3),
      bar(utc('2024-12-30T00:00:00Z'), 12, 26, 5, 25, 12),
      bar(utc('2025-01-06T00:00:00Z'), 25, 27, 24, 26, 6),
    ]);
  });

  it('refuses what cannot be rolled up', () => {
    const t = utc('2024-01-01T00:00:00Z');
    expect(() => rollupBars([], '1h', '1m')).toThrow(/cannot roll 1h bars up to 1m/);
    expect(() => rollupBars([bar(t + 1, 1, 1, 1, 1, 1)], '1m', '1h')).toThrow(/not aligned to 1m/);
    expect(() => rollupBars([bar(t, 1, 1, 1, 1, 1), bar(t, 2, 2, 2, 2, 1)], '1m', '1h')).toThrow(
      /two 1m bars/,
    );
  });
});
