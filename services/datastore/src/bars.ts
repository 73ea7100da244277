import type { BarChunkCache } from '@candlestream/cache';
import { spanStart } from '@candlestream/cache';
import type { Bar, Clock, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { AppError, floorBucket, INTERVAL_MS } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import type { LiveView } from './live.js';
import type { BarPage, Piece } from './ohlcv-body.js';
import { barsPiece, contentTag, pagePiece, renderPage } from './ohlcv-body.js';

/** Buckets that ended longer ago than this are cached: later trades arrive as corrections. */
export const CACHE_AFTER_CLOSE_MS = 2 * 60_000;
/** Bars per prepared page: a twelfth of a cache chunk (2 hours of 1m, 5 days of 1h). */
export const PAGE_BARS = 120;
/** Rendered pages kept in memory by default (PREPARED_CACHE_MB). */
export const PREPARED_CACHE_BYTES = 64 * 1_024 * 1_024;

/** An `/ohlcv` answer's bars as pieces of bytes (ohlcv-body.ts), not objects. */
export interface OhlcvBars {
  pieces: Piece[];
  partial: boolean;
  /** Identifies the bars: their pages' tags and a checksum of the rest. */
  tag: string;
  /** Every bar came from closed pages: `tag` is a strong validator, the answer immutable. */
  closed: boolean;
}

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
  /** Rendered closed pages, least recently used first; `#preparedBytes` is their size. */
  readonly #prepared = new Map<string, { page: BarPage; bytes: number }>();
  readonly #preparedMax: number;
  #preparedBytes = 0;
  /** Bumped per series on every invalidation: a page read before one is not kept. */
  readonly #generation = new Map<string, number>();
  readonly stats = { pageHits: 0, pageMisses: 0 };

  constructor(options: {
    repository: Repository;
    cache: BarChunkCache;
    live: LiveView;
    clock: Clock;
    maxBars: number;
    /** Memory for rendered pages (default PREPARED_CACHE_BYTES); 0 renders every request. */
    preparedBytes?: number | undefined;
  }) {
    this.#repository = options.repository;
    this.#cache = options.cache;
    this.#live = options.live;
    this.#clock = options.clock;
    this.#maxBars = options.maxBars;
    this.#preparedMax = options.preparedBytes ?? PREPARED_CACHE_BYTES;
    // Not every stand-in of the cache in tests can tell; the real one always does.
    this.#cache.onInvalidate?.((symbol, interval, times) =>
      this.#dropPages(symbol, interval, times),
    );
  }

  /** Memory held by rendered pages, in bytes (for /health and the bench). */
  get preparedBytes(): number {
    return this.#preparedBytes;
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
    if (limit !== undefined) {
      const bars = (await this.last(symbol, interval, limit, to)).filter((b) => b.time >= from);
      return this.#answer(interval, bars);
    }
    this.#checkWidth(interval, from, to, options.limitName ?? 'limit');
    const closedBefore = floorBucket(this.#clock.now() - CACHE_AFTER_CLOSE_MS, interval);
    const stored = options.fresh
      ? await this.#repository.readBars(symbol, interval, from, to)
      : await this.#cache.read(symbol, interval, from, to, closedBefore);
    return this.#answer(interval, await this.#withForming(symbol, interval, stored, from, to));
  }

  /**
   * `range` for `/ohlcv`, as bytes: closed pages (PAGE_BARS buckets that ended before the cache
   * horizon) come rendered from memory, and only the rest (the open end, the forming bar) is read
   * and rendered for this request. With `limit` or `fresh` everything is rendered afresh.
   */
  async ohlcv(
    symbol: MarketSymbol,
    interval: Interval,
    from: EpochMs,
    to: EpochMs,
    limit?: number,
    options: { fresh?: boolean } = {},
  ): Promise<OhlcvBars> {
    if (limit !== undefined || options.fresh || this.#preparedMax === 0) {
      const { bars, partial } = await this.range(symbol, interval, from, to, limit, options);
      const pieces = compact([barsPiece(bars)]);
      return { pieces, partial, tag: contentTag('', [], pieces), closed: false };
    }
    this.#checkWidth(interval, from, to, 'limit');
    const closedBefore = floorBucket(this.#clock.now() - CACHE_AFTER_CLOSE_MS, interval);
    const span = INTERVAL_MS[interval] * PAGE_BARS;
    const starts: EpochMs[] = [];
    for (
      let p = spanStart(from, interval, PAGE_BARS);
      p < to && p + span <= closedBefore;
      p += span
    )
      starts.push(p);
    const pages = await this.#pages(symbol, interval, starts, closedBefore);
    const pieces = compact(pages.map((page) => pagePiece(page, from, to)));
    let lastTime = pages.findLast((p) => p.times.length > 0)?.times.at(-1);
    const openFrom = starts.length > 0 ? Math.max(from, starts.at(-1)! + span) : from;
    const key = `${symbol} ${interval} ${from} ${to}`;
    if (openFrom >= to) {
      return { pieces, partial: false, tag: contentTag(key, pages, []), closed: true };
    }
    const stored = await this.#cache.read(symbol, interval, openFrom, to, closedBefore);
    const bars = await this.#withForming(symbol, interval, stored, openFrom, to);
    const rest = compact([barsPiece(bars)]);
    pieces.push(...rest);
    lastTime = bars.at(-1)?.time ?? lastTime;
    return {
      pieces,
      partial: lastTime !== undefined && lastTime + INTERVAL_MS[interval] > this.#clock.now(),
      tag: contentTag(key, pages, rest),
      closed: false,
    };
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

  #checkWidth(interval: Interval, from: EpochMs, to: EpochMs, limitName: string): void {
    const buckets = Math.ceil((to - from) / INTERVAL_MS[interval]);
    if (buckets > this.#maxBars) {
      throw new AppError(
        'INVALID_ARGUMENT',
        `the range holds up to ${buckets} ${interval} bars; at most ${this.#maxBars} per request (narrow the range or pass ${limitName})`,
      );
    }
  }

  /** The rendered pages starting at `starts`; the missing ones read in one range and kept. */
  async #pages(
    symbol: MarketSymbol,
    interval: Interval,
    starts: readonly EpochMs[],
    closedBefore: EpochMs,
  ): Promise<BarPage[]> {
    const series = `${symbol} ${interval}`;
    const out: (BarPage | undefined)[] = starts.map((start) => {
      const key = `${series} ${start}`;
      const entry = this.#prepared.get(key);
      if (!entry) return undefined;
      this.#prepared.delete(key); // most recently used last
      this.#prepared.set(key, entry);
      return entry.page;
    });
    const missing = starts.filter((_, i) => out[i] === undefined);
    this.stats.pageHits += starts.length - missing.length;
    this.stats.pageMisses += missing.length;
    if (missing.length === 0) return out as BarPage[];
    const generation = this.#generation.get(series) ?? 0;
    const span = INTERVAL_MS[interval] * PAGE_BARS;
    const bars = await this.#cache.read(
      symbol,
      interval,
      missing[0]!,
      missing.at(-1)! + span,
      closedBefore,
    );
    const byPage = new Map<EpochMs, Bar[]>(missing.map((start) => [start, []]));
    for (const bar of bars) byPage.get(spanStart(bar.time, interval, PAGE_BARS))?.push(bar);
    const keep = (this.#generation.get(series) ?? 0) === generation;
    for (const [i, start] of starts.entries()) {
      const fresh = byPage.get(start);
      if (out[i] || !fresh) continue;
      const page = renderPage(fresh);
      out[i] = page;
      if (keep) this.#keep(`${series} ${start}`, page);
    }
    return out as BarPage[];
  }

  #keep(key: string, page: BarPage): void {
    const bytes =
      page.raw.length + page.deflated.length + page.times.byteLength + page.offsets.byteLength;
    const old = this.#prepared.get(key);
    if (old) this.#preparedBytes -= old.bytes;
    this.#prepared.delete(key);
    this.#prepared.set(key, { page, bytes });
    this.#preparedBytes += bytes;
    for (const [oldest, entry] of this.#prepared) {
      if (this.#preparedBytes <= this.#preparedMax) break;
      this.#prepared.delete(oldest);
      this.#preparedBytes -= entry.bytes;
    }
  }

  #dropPages(symbol: MarketSymbol, interval: Interval, times: readonly EpochMs[]): void {
    const series = `${symbol} ${interval}`;
    this.#generation.set(series, (this.#generation.get(series) ?? 0) + 1);
    for (const time of times) {
      const key = `${series} ${spanStart(time, interval, PAGE_BARS)}`;
      const entry = this.#prepared.get(key);
      if (!entry) continue;
      this.#prepared.delete(key);
      this.#preparedBytes -= entry.bytes;
    }
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

function compact<T>(items: readonly (T | undefined)[]): T[] {
  return items.filter((item): item is T => item !== undefined);
}
