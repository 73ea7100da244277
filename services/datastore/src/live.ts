import type { BarChunkCache, LiveBarStore } from '@candlestream/cache';
import { MemoryLiveBarStore } from '@candlestream/cache';
import type { BarUpdate, Interval, MarketSymbol } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { LiveFeed } from './stream/feed.js';

/**
 * The datastore's view of the live candles, fed by `bar-updates`: the newest bar per series in
 * memory (falling back to the live store, which the fixed consumer keeps, after a restart), the
 * listeners of /stream, and cache invalidation: a final bar means its bucket is settled, or was
 * corrected by a late trade, so the cached chunk holding it is dropped.
 */
export class LiveView implements LiveFeed {
  /** The newest update per series seen on bar-updates. */
  readonly #latest = new MemoryLiveBarStore();
  readonly #listeners = new Set<(update: BarUpdate) => void>();
  readonly #store: LiveBarStore;
  readonly #cache: BarChunkCache;
  readonly #log: Logger;
  received = 0;

  constructor(options: { store: LiveBarStore; cache: BarChunkCache; logger: Logger }) {
    this.#store = options.store;
    this.#cache = options.cache;
    this.#log = options.logger.child({ component: 'live' });
  }

  async ingest(updates: readonly BarUpdate[]): Promise<void> {
    await this.#latest.put(updates);
    const finals = new Map<string, { symbol: MarketSymbol; interval: Interval; times: number[] }>();
    for (const update of updates) {
      this.received += 1;
      if (update.final) {
        const key = `${update.symbol} ${update.interval}`;
        let entry = finals.get(key);
        if (!entry)
          finals.set(
            key,
            (entry = { symbol: update.symbol, interval: update.interval, times: [] }),
          );
        entry.times.push(update.bar.time);
      }
      for (const listener of this.#listeners) {
        try {
          listener(update);
        } catch (err) {
          this.#log.warn('stream listener failed', { err: (err as Error).message });
        }
      }
    }
    for (const { symbol, interval, times } of finals.values()) {
      await this.#cache.invalidate(symbol, interval, times);
    }
  }

  async current(symbol: MarketSymbol, interval: Interval): Promise<BarUpdate | undefined> {
    const inMemory = await this.#latest.get(symbol, interval);
    if (inMemory) return inMemory;
    try {
      return await this.#store.get(symbol, interval);
    } catch (err) {
      this.#log.warn('live store read failed', { err: (err as Error).message });
      return undefined;
    }
  }

  onUpdate(listener: (update: BarUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
