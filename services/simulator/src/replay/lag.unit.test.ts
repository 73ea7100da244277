import { describe, expect, it } from 'vitest';
import { LagHistogram } from './lag.js';

describe('LagHistogram', () => {
  it('answers quantiles to its bucket width and the exact maximum', () => {
    const h = new LagHistogram();
    for (let i = 0; i < 1_000; i++) h.record(i / 10); // 0.0 .. 99.9 ms
    h.record(5_000);
    expect(h.count).toBe(1_001);
    expect(h.quantile(0.5)).toBeCloseTo(50.1, 1);
    expect(h.quantile(0.99)).toBeCloseTo(99.1, 1);
    expect(h.summary().max).toBe(5_000);
  });

  it('is empty at zero, and counts negative lags (early) as zero', () => {
    const h = new LagHistogram();
    expect(h.summary()).toEqual({ p50: 0, p99: 0, max: 0 });
    h.record(-3, 10);
    expect(h.summary()).toEqual({ p50: 0, p99: 0, max: 0 });
  });
});
