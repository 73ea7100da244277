import type { BarChunkCache, LiveBarStore } from '@candlestream/cache';
import { MemoryLiveBarStore } from '@candlestream/cache';
import type { BarUpdate, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { INTERVAL_MS, MINUTE_MS } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { HistoryEvent, LiveFeed } from './stream/feed.js';

/**
 * A final whose bucket ended this long before the newest bar seen of its symbol is history, not
 * news: the dynamic consumer's finals of a backfilled range, or a correction long after. Live
 * finals come within the allowed lateness (seconds) of their bucket's end. Measured on the bars'
 * own times, not the clock, so a replay at any speed is live.
 */
export const HISTORY_FINAL_AGE_MS = 10 * MINUTE_MS;

/**
 * The datastore's view of the live candles, fed by `bar-updates`: the newest bar per series in
 * memory (falling back to the live store, which the fixed consumer keeps, after a restart), the
 * listeners of /stream, and cache invalidation: a final bar means its bucket is settled, or was
 * corrected by a late trade, so the cached chunk holding it is dropped. Finals of history
 * (HISTORY_FINAL_AGE_MS) only drop chunks: they are not the current bar, nor sent to /stream.
 */
export class LiveView implements LiveFeed {
  /** The newest update per series seen on bar-updates. */
  readonly #latest = new MemoryLiveBarStore();
  readonly #listeners = new Set<(update: BarUpdate) => void>();
  readonly #historyListeners = new Set<(event: HistoryEvent) => void>();
  readonly #store: LiveBarStore;
  readonly #cache: BarChunkCache;
  readonly #log: Logger;
  /** Open time of the newest bar seen per symbol, any interval (the 1m ones lead). */
  readonly #newest = new Map<MarketSymbol, EpochMs>();
  received = 0;
  /** Finals taken as history: dropped cached chunks, kept from the live side. */
  historical = 0;

  constructor(options: { store: LiveBarStore; cache: BarChunkCache; logger: Logger }) {
    this.#store = options.store;
    this.#cache = options.cache;
    this.#log = options.logger.child({ component: 'live' });
  }

  async ingest(updates: readonly BarUpdate[]): Promise<void> {
    await this.#learnNewest(updates);
    const live: BarUpdate[] = [];
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
      if (this.#isHistory(update)) {
        this.historical += 1;
        continue;
      }
      live.push(update);
      const newest = this.#newest.get(update.symbol);
      if (newest === undefined || update.bar.time > newest)
        this.#newest.set(update.symbol, update.bar.time);
    }
    await this.#latest.put(live);
    for (const update of live) {
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

  #isHistory(update: BarUpdate): boolean {
    const newest = this.#newest.get(update.symbol);
    if (!update.final || newest === undefined) return false;
    return update.bar.time + INTERVAL_MS[update.interval] < newest - HISTORY_FINAL_AGE_MS;
  }

  /** A symbol first seen with finals: its newest bar from the live store (the fixed consumer's). */
  async #learnNewest(updates: readonly BarUpdate[]): Promise<void> {
    const unknown = new Set<MarketSymbol>();
    for (const u of updates) if (u.final && !this.#newest.has(u.symbol)) unknown.add(u.symbol);
    for (const symbol of unknown) {
      const current = await this.current(symbol, '1m');
      if (current) this.#newest.set(symbol, current.bar.time);
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

  /** A backfill ended (backfill-status): /stream tells the symbol's subscribers. */
  announceHistory(event: HistoryEvent): void {
    for (const listener of this.#historyListeners) {
      try {
        listener(event);
      } catch (err) {
        this.#log.warn('history listener failed', { err: (err as Error).message });
      }
    }
  }

  onHistory(listener: (event: HistoryEvent) => void): () => void {
    this.#historyListeners.add(listener);
    return () => this.#historyListeners.delete(listener);
  }
}
