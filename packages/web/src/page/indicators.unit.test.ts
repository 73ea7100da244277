import type { Bar } from '@candlestream/datafeed';
import { SMA } from 'trading-signals';
import { describe, expect, it } from 'vitest';
import { parseStudies, Study } from './indicators.js';

const MINUTE_MS = 60_000;
const bar = (i: number, close: number, volume = 1): Bar => ({
  time: Date.UTC(2026, 0, 1) + i * MINUTE_MS,
  open: close,
  high: close + 1,
  low: close - 1,
  close,
  volume,
});
const closes = Array.from({ length: 60 }, (_, i) => 100 + Math.sin(i / 3) * 10 + i / 10);
const bars = closes.map((c, i) => bar(i, c));

describe('indicators on the chart (trading-signals)', () => {
  it('SMA over the loaded bars is the mean of the last 20 closes', () => {
    const [, points] = Study.over('sma', MINUTE_MS, bars);
    expect(points).toHaveLength(bars.length - 19);
    const mean = closes.slice(-20).reduce((a, b) => a + b, 0) / 20;
    expect(points[points.length - 1]!.value).toBeCloseTo(mean, 9);
  });

  it('the forming bar replaces its own input: repeated ticks equal one final bar', () => {
    for (const id of ['sma', 'ema', 'rsi', 'vwap'] as const) {
      const [live] = Study.over(id, MINUTE_MS, bars.slice(0, -1));
      const last = bars[bars.length - 1]!;
      for (const close of [90, 130, 101]) live.push({ ...last, close, volume: 0.5 });
      const final = live.push(last);
      const [batch, points] = Study.over(id, MINUTE_MS, bars);
      expect(final?.value, id).toBeCloseTo(points[points.length - 1]!.value, 9);
      expect(live.values.get(last.time), id).toBeCloseTo(batch.values.get(last.time)!, 9);
    }
  });

  it('RSI stays within 0-100; an older bar is ignored', () => {
    const [rsi, points] = Study.over('rsi', MINUTE_MS, bars);
    for (const p of points) expect(p.value).toBeGreaterThanOrEqual(0);
    for (const p of points) expect(p.value).toBeLessThanOrEqual(100);
    expect(rsi.push(bars[0]!)).toBeUndefined();
  });

  it('VWAP starts again each UTC day on intraday bars and skips bars without volume', () => {
    const day = 86_400_000;
    const lateBar = { ...bar(0, 100, 10), time: Date.UTC(2026, 0, 1) + day - MINUTE_MS };
    const nextDay = { ...bar(0, 200, 1), time: Date.UTC(2026, 0, 2) };
    const [, points] = Study.over('vwap', MINUTE_MS, [lateBar, bar(5, 50, 0), nextDay]);
    expect(points.map((p) => p.value)).toEqual([100, 200]);
  });

  it('matches the library used directly', () => {
    const sma = new SMA(20);
    let direct: number | null = null;
    for (const c of closes) direct = sma.add(c);
    const [study] = Study.over('sma', MINUTE_MS, bars);
    expect(study.values.get(bars[bars.length - 1]!.time)).toBe(direct);
  });

  it('reads the URL list, dropping names it does not know', () => {
    expect(parseStudies('RSI, sma,macd')).toEqual(['sma', 'rsi']);
    expect(parseStudies(null)).toEqual([]);
  });
});
