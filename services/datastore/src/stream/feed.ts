import type {
  BackfillStatus,
  BarUpdate,
  EpochMs,
  Interval,
  MarketSymbol,
} from '@candlestream/core';

/** History of a symbol changed: a backfill stored [from, to), so a page reloads that range. */
export interface HistoryEvent {
  symbol: MarketSymbol;
  backfill: { id: string; status: BackfillStatus };
  from: EpochMs;
  to: EpochMs;
}

/**
 * What the /stream hub needs from the rest of the datastore: the current bar of a series (so a
 * new subscription gets it at once) and every update as it arrives from `bar-updates`.
 */
export interface LiveFeed {
  /** The newest bar of (symbol, interval): forming, or the one that just closed. */
  current(symbol: MarketSymbol, interval: Interval): Promise<BarUpdate | undefined>;
  /** Calls `listener` for every update, in arrival order; returns the unsubscribe function. */
  onUpdate(listener: (update: BarUpdate) => void): () => void;
  /** Calls `listener` when a backfill of a symbol ended (done); absent: never. */
  onHistory?(listener: (event: HistoryEvent) => void): () => void;
}
