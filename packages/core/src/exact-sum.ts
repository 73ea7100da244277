/**
 * Exact floating-point summation (Shewchuk's algorithm, as in Python's `math.fsum`).
 *
 * The running sum is kept as a list of non-overlapping partials whose sum is exact; `value()`
 * rounds it once, correctly (half to even). So the result is the correctly rounded sum of the
 * inputs, whatever order they arrived in: re-ordered or replayed trades give a bit-identical
 * volume, which plain `+=` does not. Inputs must be finite.
 *
 * Reference: J. R. Shewchuk, "Adaptive Precision Floating-Point Arithmetic and Fast Robust
 * Geometric Predicates" (1997); CPython Modules/mathmodule.c `math_fsum`.
 */
export class ExactSum {
  // Ascending magnitude, non-overlapping; almost always one or two entries.
  #partials: number[] = [];

  add(value: number): this {
    let x = value;
    let kept = 0;
    for (let j = 0; j < this.#partials.length; j++) {
      let y = this.#partials[j]!;
      if (Math.abs(x) < Math.abs(y)) {
        const t = x; // swap without allocating: this is the hot path of every trade
        x = y;
        y = t;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) this.#partials[kept++] = lo;
      x = hi;
    }
    this.#partials.length = kept;
    this.#partials.push(x);
    return this;
  }

  /** The correctly rounded value of the exact sum. */
  value(): number {
    const p = this.#partials;
    let i = p.length;
    if (i === 0) return 0;
    let hi = p[--i]!;
    let lo = 0;
    while (i > 0) {
      const x = hi;
      const y = p[--i]!;
      hi = x + y;
      const yr = hi - x;
      lo = y - yr;
      if (lo !== 0) break;
    }
    // Round half to even across the remaining partials: if the rest pushes past the halfway
    // point in the same direction as `lo`, the first rounding went the wrong way.
    if (i > 0 && ((lo < 0 && p[i - 1]! < 0) || (lo > 0 && p[i - 1]! > 0))) {
      const y = lo * 2;
      const x = hi + y;
      if (y === x - hi) hi = x;
    }
    return hi;
  }

  /**
   * The partials whose exact sum this is (non-overlapping, ascending magnitude): storing them
   * keeps the sum exact across writes, so merging more values later still rounds only once.
   */
  partials(): readonly number[] {
    return this.#partials;
  }

  /** A sum continuing from stored partials (or from any finite values, which it adds). */
  static of(values: Iterable<number>): ExactSum {
    const sum = new ExactSum();
    for (const v of values) sum.add(v);
    return sum;
  }

  clone(): ExactSum {
    const copy = new ExactSum();
    copy.#partials = [...this.#partials];
    return copy;
  }
}

/** The correctly rounded sum of `values`, independent of their order. */
export function exactSum(values: Iterable<number>): number {
  const sum = new ExactSum();
  for (const v of values) sum.add(v);
  return sum.value();
}
