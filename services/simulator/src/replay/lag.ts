/**
 * Lag behind schedule as a fixed-size histogram: a year of trades must not keep a sample each.
 * 0.1 ms buckets up to 1 s, then 10 ms buckets up to 60 s; the exact maximum is kept beside.
 */
import type { LagSummary } from './types.js';

const FINE_MS = 0.1;
const FINE_UNTIL_MS = 1_000;
const COARSE_MS = 10;
const COARSE_UNTIL_MS = 60_000;
const FINE_BUCKETS = FINE_UNTIL_MS / FINE_MS;
const BUCKETS = FINE_BUCKETS + (COARSE_UNTIL_MS - FINE_UNTIL_MS) / COARSE_MS + 1;

export class LagHistogram {
  readonly #counts = new Uint32Array(BUCKETS);
  #total = 0;
  #max = 0;

  record(lagMs: number, count = 1): void {
    const lag = Math.max(0, lagMs);
    const bucket =
      lag < FINE_UNTIL_MS
        ? Math.floor(lag / FINE_MS)
        : Math.min(BUCKETS - 1, FINE_BUCKETS + Math.floor((lag - FINE_UNTIL_MS) / COARSE_MS));
    this.#counts[bucket]! += count;
    this.#total += count;
    if (lag > this.#max) this.#max = lag;
  }

  get count(): number {
    return this.#total;
  }

  /** The upper edge of the bucket holding quantile `q` (0..1), capped at the maximum seen. */
  quantile(q: number): number {
    if (this.#total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) {
        const edge =
          i < FINE_BUCKETS ? (i + 1) * FINE_MS : FINE_UNTIL_MS + (i - FINE_BUCKETS + 1) * COARSE_MS;
        return Math.min(edge, this.#max);
      }
    }
    return this.#max;
  }

  summary(): LagSummary {
    return { p50: this.quantile(0.5), p99: this.quantile(0.99), max: this.#max };
  }
}
