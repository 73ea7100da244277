import { describe, expect, it } from 'vitest';
import type { Bar } from './bars.js';
import { checkSeries, diffBars } from './series.js';

const M = 60_000;
const T0 = Date.UTC(2024, 0, 1);
const bar = (time: number, patch: Partial<Bar> = {}): Bar => ({
  time,
  open: 10,
  high: 12,
  low: 9,
  close: 11,
  volume: 1,
  ...patch,
});

describe('checkSeries', () => {
  it('accepts a clean series', () => {
    const report = checkSeries([bar(T0), bar(T0 + M), bar(T0 + 2 * M)], '1m');
    expect(report).toEqual({
      ok: true,
      issues: [],
      counts: { misaligned: 0, 'out-of-order': 0, overlap: 0, gap: 0, 'invalid-bar': 0 },
    });
    expect(checkSeries([], '1m').ok).toBe(true);
  });

  it('reports a gap with the number of missing bars, allowed only when asked', () => {
    const bars = [bar(T0), bar(T0 + 4 * M)];
    const strict = checkSeries(bars, '1m');
    expect(strict.ok).toBe(false);
    expect(strict.issues).toEqual([expect.objectContaining({ kind: 'gap', index: 1, missing: 3 })]);
    expect(strict.issues[0]!.message).toMatch(
      /3 1m bar\(s\) missing between 2024-01-01T00:00:00.000Z/,
    );
    const lenient = checkSeries(bars, '1m', { gaps: 'allow' });
    expect(lenient.ok).toBe(true);
    expect(lenient.counts.gap).toBe(1);
  });

  it('reports two bars in one bucket as an overlap', () => {
    const report = checkSeries([bar(T0), bar(T0 + M), bar(T0 + M)], '1m', { gaps: 'allow' });
    expect(report.ok).toBe(false);
    expect(report.issues).toEqual([
      expect.objectContaining({
        kind: 'overlap',
        index: 2,
        message: expect.stringMatching(/two bars at/),
      }),
    ]);
  });

  it('reports a misaligned bar and the overlap it causes', () => {
    const report = checkSeries([bar(T0), bar(T0 + 30_000)], '1m');
    expect(report.counts).toMatchObject({ misaligned: 1, overlap: 1 });
  });

  it('reports bars out of order', () => {
    const report = checkSeries([bar(T0 + 2 * M), bar(T0), bar(T0 + M)], '1m');
    expect(report.issues.map((i) => i.kind)).toEqual(['out-of-order']);
    expect(report.ok).toBe(false);
  });

  it('reports bars that break the OHLC invariants', () => {
    const report = checkSeries(
      [
        bar(T0, { high: 10.5 }),
        bar(T0 + M, { low: 11.5 }),
        bar(T0 + 2 * M, { volume: -1 }),
        bar(T0 + 3 * M, { close: Number.NaN }),
      ],
      '1m',
    );
    expect(report.counts['invalid-bar']).toBe(4);
    expect(report.issues.map((i) => i.message)).toEqual([
      expect.stringMatching(/high below/),
      expect.stringMatching(/low above/),
      expect.stringMatching(/negative volume/),
      expect.stringMatching(/non-finite/),
    ]);
  });

  it('checks weekly series on Monday boundaries', () => {
    const monday = Date.UTC(2024, 0, 1);
    const week = 7 * 24 * 60 * M;
    expect(checkSeries([bar(monday), bar(monday + week)], '1w').ok).toBe(true);
    expect(checkSeries([bar(monday + 24 * 60 * M)], '1w').counts.misaligned).toBe(1);
  });
});

describe('diffBars', () => {
  it('finds missing, unexpected and different bars', () => {
    const expected = [bar(T0), bar(T0 + M), bar(T0 + 2 * M, { close: 11 })];
    const actual = [bar(T0), bar(T0 + 2 * M, { close: 11.5 }), bar(T0 + 3 * M)];
    expect(diffBars(expected, actual).map((d) => d.message)).toEqual([
      'missing bar at 2024-01-01T00:01:00.000Z',
      'close at 2024-01-01T00:02:00.000Z: 11.5 != 11',
      'unexpected bar at 2024-01-01T00:03:00.000Z',
    ]);
  });

  it('compares volume exactly unless given a tolerance', () => {
    const a = [bar(T0, { volume: 0.3 })];
    const b = [bar(T0, { volume: 0.1 + 0.2 })];
    expect(diffBars(a, b)).toHaveLength(1);
    expect(diffBars(a, b, { volumeRelTol: 1e-12 })).toEqual([]);
    expect(diffBars(a, [bar(T0, { volume: 0.31 })], { volumeRelTol: 1e-12 })).toHaveLength(1);
  });
});
