import { describe, expect, it } from 'vitest';
import { ExactSum, exactSum } from './exact-sum.js';
import { seededRandom, shuffled } from './testing.js';

/** The correctly rounded sum by exact integer arithmetic: the reference ExactSum must match. */
function referenceSum(values: number[]): number {
  const view = new DataView(new ArrayBuffer(8));
  const parts = values
    .filter((x) => x !== 0)
    .map((x) => {
      view.setFloat64(0, x);
      const hi = view.getUint32(0);
      const lo = view.getUint32(4);
      const sign = hi >>> 31 ? -1n : 1n;
      const exponentBits = (hi >>> 20) & 0x7ff;
      let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
      let exponent: number;
      if (exponentBits === 0) {
        exponent = -1074;
      } else {
        mantissa |= 1n << 52n;
        exponent = exponentBits - 1075;
      }
      return { m: sign * mantissa, e: exponent };
    });
  if (parts.length === 0) return 0;
  const minExp = Math.min(...parts.map((p) => p.e));
  let total = 0n;
  for (const p of parts) total += p.m << BigInt(p.e - minExp);
  // Number(bigint) rounds to nearest, ties to even; scaling by a power of two is then exact.
  return Number(total) * 2 ** minExp;
}

describe('ExactSum', () => {
  it('sums decimals that plain addition gets wrong', () => {
    expect(0.1 + 0.2 + 0.3).not.toBe(0.6);
    expect(exactSum([0.1, 0.2, 0.3])).toBe(0.6);
  });

  it('keeps small terms that cancel large ones', () => {
    expect(1e100 + 1 - 1e100).toBe(0);
    expect(exactSum([1e100, 1, -1e100])).toBe(1);
    expect(exactSum([])).toBe(0);
  });

  it('rounds half to even across partials', () => {
    // 1 + 2^-53 is exactly halfway between 1 and its successor; the extra tiny term tips it up.
    expect(exactSum([1, 2 ** -53, 2 ** -105])).toBe(1 + 2 ** -52);
    expect(exactSum([1, 2 ** -53])).toBe(1);
  });

  it('equals the exact reference and ignores order, where += does not', () => {
    const random = seededRandom(42);
    let naiveOrderDependent = false;
    for (let round = 0; round < 200; round++) {
      const values = Array.from(
        { length: 1 + Math.floor(random() * 300) },
        () =>
          Math.round(random() * 10 ** (1 + Math.floor(random() * 6))) /
          10 ** Math.floor(random() * 9),
      );
      const expected = referenceSum(values);
      expect(exactSum(values)).toBe(expected);
      const reordered = shuffled(values, random);
      expect(exactSum(reordered)).toBe(expected);
      const naive = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
      if (naive(values) !== naive(reordered)) naiveOrderDependent = true;
    }
    // The property is not vacuous: plain addition does depend on order for these inputs.
    expect(naiveOrderDependent).toBe(true);
  });

  it('continues from a clone independently', () => {
    const a = new ExactSum().add(0.1).add(0.2);
    const b = a.clone().add(0.3);
    expect(a.value()).toBe(exactSum([0.1, 0.2]));
    expect(b.value()).toBe(0.6);
  });
});
