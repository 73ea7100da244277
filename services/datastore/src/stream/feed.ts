import type {
  BackfillStatus,
  BarUpdate,
  EpochMs,
  Interval,
  MarketSymbol,
} from '@candlestream/core';
import type { ReplayView } from '../replays.js';

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

/**
 * Bars of the chart's replay sessions (docs/REPLAY.md), built from each session's topic while a
 * client watches it, and the sessions' statuses as the simulator reports them.
 */
export interface ReplayFeed {
  /** Why `symbol` of `session` cannot be subscribed (unknown session, symbol not in it), if so. */
  refusal(session: string, symbol: MarketSymbol): string | undefined;
  /** A client watches `session`: its bars are built until the returned function is called. */
  watch(session: string): () => void;
  /** The series' bars built so far: finals ascending, then the forming one. */
  bars(session: string, symbol: MarketSymbol, interval: Interval): BarUpdate[];
  /** The session's status now. */
  status(session: string): ReplayView | undefined;
  /** Every update of every watched session, in order; returns the unsubscribe function. */
  onUpdate(listener: (session: string, update: BarUpdate) => void): () => void;
  /** Every status reported; returns the unsubscribe function. */
  onStatus(listener: (status: ReplayView) => void): () => void;
}
