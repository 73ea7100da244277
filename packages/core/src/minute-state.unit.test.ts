import { describe, expect, it } from 'vitest';
import { aggregateTicks } from './aggregator.js';
import { ExactSum } from './exact-sum.js';
import type { MinuteState } from './minute-state.js';
import { mergeMinute, minuteBar } from './minute-state.js';
import { makeTick, randomTicks, seededRandom, shuffled } from './testing.js';

const MINUTE = Date.UTC(2024, 11, 31, 23, 0);

describe('mergeMinute', () => {
  const trades = randomTicks({ seed: 5, count: 300, from: MINUTE, spanMs: 60_000, tsStepMs: 100 });
  const want = aggregateTicks(trades, '1m').get(trades[0]!.symbol)![0]!;

  it('gives the aggregator bar, volume to the bit, however the trades are split and ordered', () => {
    const random = seededRandom(9);
    for (let run = 0; run < 20; run++) {
      const arrival = shuffled(trades, random);
      let state: MinuteState | undefined;
      for (let i = 0; i < arrival.length;) {
        const n = 1 + Math.floor(random() * 40);
        state = mergeMinute(state, arrival.slice(i, i + n));
        i += n;
      }
      expect(minuteBar(MINUTE, state!)).toEqual(want);
      expect(state!.trades).toBe(trades.length);
    }
  });

  it('continues exactly from stored partials, as a row read back from the database', () => {
    const first = mergeMinute(undefined, trades.slice(0, 150))!;
    // What migration 0005 stores and the repository reads back.
    const stored: MinuteState = {
      ...first,
      volume: ExactSum.of([...first.volume.partials()]),
    };
    expect(minuteBar(MINUTE, mergeMinute(stored, trades.slice(150))!)).toEqual(want);
  });

  it('keeps the stored open and close when their keys are unknown (rows from before keys)', () => {
    const legacy: MinuteState = {
      open: 10,
      high: 12,
      low: 9,
      close: 11,
      volume: ExactSum.of([3]),
      trades: 3,
      openKey: null,
      closeKey: null,
    };
    const merged = mergeMinute(legacy, [
      makeTick({ ts: MINUTE, price: 20, size: 1 }),
      makeTick({ ts: MINUTE + 59_999, price: 5, size: 0.5 }),
    ])!;
    expect(minuteBar(MINUTE, merged)).toEqual({
      time: MINUTE,
      open: 10,
      high: 20,
      low: 5,
      close: 11,
      volume: 4.5,
    });
    expect(merged.trades).toBe(5);
    expect(legacy.volume.value()).toBe(3); // the input state is not changed
  });

  it('starts nothing from no trades', () => {
    expect(mergeMinute(undefined, [])).toBeUndefined();
  });
});
