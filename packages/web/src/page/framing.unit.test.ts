import { describe, expect, it } from 'vitest';
import { fewBarsRange, MAX_SLOTS, MIN_SLOTS, ROOM_BARS, slotsFor } from './framing.js';

const PHONE_PX = 320;
const DESKTOP_PX = 1210;

describe('framing a series too short to fill the chart', () => {
  it('one candle is not pinned to the right edge: it sits ROOM_BARS slots in, at a normal width', () => {
    const range = fewBarsRange(1, DESKTOP_PX)!;
    expect(range.to).toBe(ROOM_BARS);
    expect(range.to - range.from).toBe(MAX_SLOTS);
    expect(range.from).toBeLessThan(0); // the empty slots are on the left
    expect(DESKTOP_PX / (range.to - range.from)).toBeCloseTo(10, 0);
  });

  it('one candle on a phone is not stretched: at least MIN_SLOTS slots in view', () => {
    const range = fewBarsRange(1, PHONE_PX)!;
    expect(range.to - range.from).toBe(MIN_SLOTS);
    expect(slotsFor(0)).toBe(MIN_SLOTS);
    expect(slotsFor(100_000)).toBe(MAX_SLOTS);
  });

  it('the newest bar keeps its room and every bar stays in view as bars are added', () => {
    for (const bars of [1, 2, 10, 50]) {
      const range = fewBarsRange(bars, DESKTOP_PX)!;
      expect(range.to - (bars - 1)).toBe(ROOM_BARS);
      expect(range.from).toBeLessThanOrEqual(0);
    }
  });

  it('bars that fill the chart are left to it', () => {
    expect(fewBarsRange(MIN_SLOTS - ROOM_BARS - 1, PHONE_PX)).toBeDefined();
    expect(fewBarsRange(MIN_SLOTS - ROOM_BARS, PHONE_PX)).toBeUndefined();
    expect(fewBarsRange(MAX_SLOTS - ROOM_BARS, DESKTOP_PX)).toBeUndefined();
    expect(fewBarsRange(300, DESKTOP_PX)).toBeUndefined();
  });
});
