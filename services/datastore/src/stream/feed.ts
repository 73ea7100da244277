import type { BarUpdate, Interval, MarketSymbol } from '@candlestream/core';

/**
 * What the /stream hub needs from the rest of the datastore: the current bar of a series (so a
 * new subscription gets it at once) and every update as it arrives from `bar-updates`.
 */
export interface LiveFeed {
  /** The newest bar of (symbol, interval): forming, or the one that just closed. */
  current(symbol: MarketSymbol, interval: Interval): Promise<BarUpdate | undefined>;
  /** Calls `listener` for every update, in arrival order; returns the unsubscribe function. */
  onUpdate(listener: (update: BarUpdate) => void): () => void;
}
