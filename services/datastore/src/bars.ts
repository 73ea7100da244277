import type { BarChunkCache } from '@candlestream/cache';
import type { Bar, Clock, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { AppError, floorBucket, INTERVAL_MS } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import type { LiveView } from './live.js';

/** Buckets that ended longer ago than this are cached: later trades arrive as corrections. */
export const CACHE_AFTER_CLOSE_MS = 2 * 60_000;

export interface BarsAnswer {
  bars: Bar[];
  /** The last bar's bucket has not ended yet. */
  partial: boolean;
}

/**
 * History from storage (through the chunk cache) merged with the live forming bar: the forming
 * bar replaces the stored one of its bucket (it is fresher: bar updates are published before the
 * write), so a series has no gap and no duplicate at the seam.
 */
export class BarService {
  readonly #repository: Repository;
  readonly #cache: BarChunkCache;
  readonly #live: LiveView;
  readonly #clock: Clock;
  readonly #maxBars: number;

  constructor(options: {
    repository: Repository;
    cache: BarChunkCache;
    live: LiveView;
    clock: Clock;
    maxBars: number;
  }) {
    this.#repository = options.repository;
    this.#cache = options.cache;
    this.#live = options.live;
    this.#clock = options.clock;
    this.#maxBars = options.maxBars;
  }

  get maxBars(): number {
    return this.#maxBars;
  }

  /**
   * Bars opening in [from, to); with `limit`, only the newest `limit` of them. `limitName` is
   * what the caller's API calls that parameter (UDF's is `countback`), for the too-wide message.
   * `fresh` reads storage past the chunk cache: after a backfill, before its finals reached the
   * live view and dropped the chunks that held nothing.
   */
  async range(
    symbol: MarketSymbol,
    interval: Interval,
    from: EpochMs,
    to: EpochMs,
    limit?: number,
    options: { limitName?: string; fresh?: boolean } = {},
  ): Promise<BarsAnswer> {
    const limitName = options.limitName ?? 'limit';
    if (limit !== undefined) {
      const bars = (await this.last(symbol, interval, limit, to)).filter((b) => b.time >= from);
      return this.#answer(interval, bars);
    }
    const buckets = Math.ceil((to - from) / INTERVAL_MS[interval]);
    if (buckets > this.#maxBars) {
      throw new AppError(
        'INVALID_ARGUMENT',
        `the range holds up to ${buckets} ${interval} bars; at most ${this.#maxBars} per request (narrow the range or pass ${limitName})`,
      );
    }
    const closedBefore = floorBucket(this.#clock.now() - CACHE_AFTER_CLOSE_MS, interval);
    const stored = options.fresh
      ? await this.#repository.readBars(symbol, interval, from, to)
      : await this.#cache.read(symbol, interval, from, to, closedBefore);
    return this.#answer(interval, await this.#withForming(symbol, interval, stored, from, to));
  }

  /** The newest `count` bars opening before `before`, ascending (TradingView's countback). */
  async last(
    symbol: MarketSymbol,
    interval: Interval,
    count: number,
    before: EpochMs,
  ): Promise<Bar[]> {
    const stored = await this.#repository.lastBars(symbol, interval, count, before);
    const from = stored[0]?.time ?? Number.NEGATIVE_INFINITY;
    return (await this.#withForming(symbol, interval, stored, from, before)).slice(-count);
  }

  /** The open time of the newest bar before `before`, if any (UDF `nextTime`). */
  async previousBarTime(
    symbol: MarketSymbol,
    interval: Interval,
    before: EpochMs,
  ): Promise<EpochMs | undefined> {
    const [bar] = await this.#repository.lastBars(symbol, interval, 1, before);
    return bar?.time;
  }

  async #withForming(
    symbol: MarketSymbol,
    interval: Interval,
    stored: Bar[],
    from: EpochMs,
    to: EpochMs,
  ): Promise<Bar[]> {
    const live = await this.#live.current(symbol, interval);
    if (!live || live.final || live.bar.time < from || live.bar.time >= to) return stored;
    const last = stored[stored.length - 1];
    if (last && last.time > live.bar.time) return stored; // storage is already past it
    const bars = last?.time === live.bar.time ? stored.slice(0, -1) : stored.slice();
    bars.push({ ...live.bar });
    return bars;
  }

  #answer(interval: Interval, bars: Bar[]): BarsAnswer {
    const last = bars[bars.length - 1];
    return {
      bars,
      partial: last !== undefined && last.time + INTERVAL_MS[interval] > this.#clock.now(),
    };
  }
}
