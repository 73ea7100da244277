import type { Bar, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { floorBucket, INTERVAL_MS } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { Redis } from 'ioredis';
import type { RedisGate } from './redis-gate.js';

/** Bars per cached chunk: a day of 1m bars is one chunk, one Redis round trip. */
export const BARS_PER_CHUNK = 1_440;
/** Closed chunks never change except by late trades or backfills, which delete them. */
export const CHUNK_TTL_S = 7 * 24 * 3_600;
/**
 * Invalidations Redis missed are remembered up to this many chunk keys; past it the cache drops
 * every chunk of its prefix when Redis answers again, since it no longer knows which are stale.
 */
export const MAX_MISSED_INVALIDATIONS = 10_000;
/** Keys per UNLINK (and per SCAN page) when catching up on missed invalidations. */
const UNLINK_BATCH = 500;

export function chunkSpanMs(interval: Interval): number {
  return INTERVAL_MS[interval] * BARS_PER_CHUNK;
}

/**
 * The start of the span of `bars` buckets holding `time`. Spans are aligned like the interval's
 * buckets (weeks on Mondays), so a bar is in exactly one.
 */
export function spanStart(time: EpochMs, interval: Interval, bars: number): EpochMs {
  const span = INTERVAL_MS[interval] * bars;
  const aligned = floorBucket(time, interval);
  const origin = floorBucket(0, interval);
  return origin + Math.floor((aligned - origin) / span) * span;
}

export function chunkStart(time: EpochMs, interval: Interval): EpochMs {
  return spanStart(time, interval, BARS_PER_CHUNK);
}

/** Told which bars of a series changed, so copies kept elsewhere (rendered pages) drop them. */
export type InvalidationListener = (
  symbol: MarketSymbol,
  interval: Interval,
  times: readonly EpochMs[],
) => void;

/** Reads the bars of [from, to) from storage; the cache's source of truth. */
export type BarLoader = (
  symbol: MarketSymbol,
  interval: Interval,
  from: EpochMs,
  to: EpochMs,
) => Promise<Bar[]>;

export interface BarCacheStats {
  hits: number;
  misses: number;
  errors: number;
  /** Reads that went straight to storage because Redis was being skipped (RedisGate). */
  skipped: number;
}

/**
 * A read-through cache of closed bars in fixed chunks of BARS_PER_CHUNK buckets. Only chunks that
 * lie wholly before `closedBefore` (a bucket the caller knows is closed) are cached; the rest is
 * read from storage every time. One MGET answers a range; the chunks it misses are loaded in one
 * storage read and written back in one pipeline. Any cache failure falls back to storage.
 */
export class BarChunkCache {
  readonly #redis: Redis | undefined;
  readonly #prefix: string;
  readonly #load: BarLoader;
  readonly #log: Logger;
  readonly #gate: RedisGate | undefined;
  readonly stats: BarCacheStats = { hits: 0, misses: 0, errors: 0, skipped: 0 };
  /**
   * Chunk keys whose invalidation did not reach Redis (it was away or skipped): their cached
   * copies may be stale, so reads treat them as missing until a fresh copy is written or the
   * UNLINK is retried (when the gate says Redis answers again, or on the next invalidation).
   */
  readonly #missed = new Set<string>();
  /** More missed than MAX_MISSED_INVALIDATIONS: no chunk is trusted until all are dropped. */
  #missedAll = false;
  #catchingUp: Promise<void> | undefined;
  readonly #listeners = new Set<InvalidationListener>();

  constructor(options: {
    redis: Redis | undefined;
    prefix: string;
    load: BarLoader;
    logger: Logger;
    /** Skips Redis for a while after a failure, instead of waiting on it every request. */
    gate?: RedisGate | undefined;
  }) {
    this.#redis = options.redis;
    this.#gate = options.gate;
    this.#prefix = options.prefix;
    this.#load = options.load;
    this.#log = options.logger.child({ component: 'bar-cache' });
    this.#gate?.watch((problem) => {
      if (problem === undefined) void this.#catchUp();
    });
  }

  /** Chunk invalidations still owed to Redis (for /health); `all` after an overflow. */
  get missedInvalidations(): number | 'all' {
    return this.#missedAll ? 'all' : this.#missed.size;
  }

  /** Calls `listener` on every invalidation, before Redis is asked; returns its removal. */
  onInvalidate(listener: InvalidationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  key(symbol: MarketSymbol, interval: Interval, start: EpochMs): string {
    return `${this.#prefix}bars:${symbol}:${interval}:${start}`;
  }

  /** Bars of [from, to), ascending; buckets before `closedBefore` may come from the cache. */
  async read(
    symbol: MarketSymbol,
    interval: Interval,
    from: EpochMs,
    to: EpochMs,
    closedBefore: EpochMs,
  ): Promise<Bar[]> {
    if (to <= from) return [];
    const span = chunkSpanMs(interval);
    const chunks: EpochMs[] = [];
    for (let c = chunkStart(from, interval); c < to && c + span <= closedBefore; c += span) {
      chunks.push(c);
    }
    if (!this.#redis || chunks.length === 0) return this.#load(symbol, interval, from, to);
    if ((this.#gate && !this.#gate.available) || this.#missedAll) {
      this.stats.skipped += 1;
      return this.#load(symbol, interval, from, to);
    }

    const keys = chunks.map((c) => this.key(symbol, interval, c));
    const cached = (await this.#mget(keys)).map((bars, i) =>
      this.#missed.has(keys[i]!) ? undefined : bars,
    );
    const out: Bar[] = [];
    const missing = chunks.filter((_, i) => cached[i] === undefined);
    this.stats.hits += chunks.length - missing.length;
    this.stats.misses += missing.length;
    const loaded = new Map<EpochMs, Bar[]>(missing.map((c) => [c, []]));
    if (missing.length > 0) {
      // One storage read covers every missing chunk (they are usually adjacent).
      const bars = await this.#load(
        symbol,
        interval,
        missing[0]!,
        missing[missing.length - 1]! + span,
      );
      for (const bar of bars) loaded.get(chunkStart(bar.time, interval))?.push(bar);
      await this.#store(symbol, interval, loaded);
    }
    const cachedEnd = chunks[chunks.length - 1]! + span;
    for (const [i, c] of chunks.entries()) {
      for (const bar of cached[i] ?? loaded.get(c) ?? []) {
        if (bar.time >= from && bar.time < to) out.push(bar);
      }
    }
    if (cachedEnd < to) out.push(...(await this.#load(symbol, interval, cachedEnd, to)));
    return out;
  }

  /** Drops the chunks holding these bars of (symbol, interval), after a late trade or a backfill. */
  async invalidate(
    symbol: MarketSymbol,
    interval: Interval,
    times: readonly EpochMs[],
  ): Promise<void> {
    if (times.length === 0) return;
    for (const listener of this.#listeners) listener(symbol, interval, times);
    if (!this.#redis) return;
    const keys = [
      ...new Set(times.map((t) => this.key(symbol, interval, chunkStart(t, interval)))),
    ];
    try {
      await this.#command((redis) => redis.unlink(...keys));
      for (const key of keys) this.#missed.delete(key);
    } catch (err) {
      this.stats.errors += 1;
      this.#remember(keys);
      this.#log.warn('cache invalidation failed; retried when redis answers', {
        keys: keys.length,
        owed: this.missedInvalidations,
        err: (err as Error).message,
      });
      return;
    }
    // Without a gate nothing says when Redis is back: an invalidation that worked says so.
    if (!this.#gate && (this.#missed.size > 0 || this.#missedAll)) await this.#catchUp();
  }

  #remember(keys: readonly string[]): void {
    if (this.#missedAll) return;
    for (const key of keys) this.#missed.add(key);
    if (this.#missed.size > MAX_MISSED_INVALIDATIONS) {
      this.#missed.clear();
      this.#missedAll = true;
    }
  }

  /** Retries the invalidations Redis missed; one run at a time, and a failure keeps them owed. */
  #catchUp(): Promise<void> {
    this.#catchingUp ??= (async () => {
      try {
        if (this.#missedAll) {
          let dropped = 0;
          const stream = this.#redis!.scanStream({
            match: `${this.#prefix}bars:*`,
            count: UNLINK_BATCH,
          });
          for await (const page of stream as AsyncIterable<string[]>) {
            if (page.length > 0) await this.#command((redis) => redis.unlink(...page));
            dropped += page.length;
          }
          this.#missedAll = false;
          this.#log.info('missed cache invalidations caught up', { droppedAllChunks: dropped });
          return;
        }
        const owed = [...this.#missed];
        for (let i = 0; i < owed.length; i += UNLINK_BATCH) {
          const batch = owed.slice(i, i + UNLINK_BATCH);
          await this.#command((redis) => redis.unlink(...batch));
          for (const key of batch) this.#missed.delete(key);
        }
        if (owed.length > 0)
          this.#log.info('missed cache invalidations caught up', { keys: owed.length });
      } catch (err) {
        this.stats.errors += 1;
        this.#log.warn('catching up on missed cache invalidations failed', {
          owed: this.missedInvalidations,
          err: (err as Error).message,
        });
      } finally {
        this.#catchingUp = undefined;
      }
    })();
    return this.#catchingUp;
  }

  /** Through the gate when there is one (a failure starts skipping Redis), else directly. */
  #command<T>(op: (redis: Redis) => Promise<T>): Promise<T> {
    return this.#gate ? this.#gate.run(op) : op(this.#redis!);
  }

  async #mget(keys: string[]): Promise<(Bar[] | undefined)[]> {
    try {
      const raw = await this.#command((redis) => redis.mget(...keys));
      return raw.map((text) => (text === null ? undefined : (JSON.parse(text) as Bar[])));
    } catch (err) {
      this.stats.errors += 1;
      this.#log.warn('cache read failed; reading storage', { err: (err as Error).message });
      return keys.map(() => undefined);
    }
  }

  async #store(
    symbol: MarketSymbol,
    interval: Interval,
    chunks: Map<EpochMs, Bar[]>,
  ): Promise<void> {
    try {
      await this.#command((redis) => {
        const pipeline = redis.pipeline();
        for (const [c, bars] of chunks) {
          pipeline.set(this.key(symbol, interval, c), JSON.stringify(bars), 'EX', CHUNK_TTL_S);
        }
        return pipeline.exec();
      });
      // A fresh copy replaces a stale one: that is the invalidation Redis missed.
      for (const c of chunks.keys()) this.#missed.delete(this.key(symbol, interval, c));
    } catch (err) {
      this.stats.errors += 1;
      this.#log.warn('cache write failed', { err: (err as Error).message });
    }
  }
}
