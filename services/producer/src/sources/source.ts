import type { EpochMs, MarketSymbol, Tick } from '@candlestream/core';

/** What a source reports about its upstream, shown on /health (a reconnecting feed is degraded). */
export type SourceStatus =
  | { state: 'connected' }
  | { state: 'disconnected'; reason: string }
  | { state: 'gap-filling'; from: EpochMs; to: EpochMs };

export interface SourceRunOptions {
  /** Aborted when the producer stops or restarts the source; the iterable must then end promptly. */
  signal: AbortSignal;
  /**
   * Newest trade time already published per symbol, when the producer restarts a source: a
   * source that can (CryptoCompare, live synthetic) fills the gap from there; others ignore it.
   */
  resumeFrom?: ReadonlyMap<MarketSymbol, EpochMs>;
  /** Upstream state changes, for /health and logs. */
  onStatus?: (status: SourceStatus) => void;
}

/**
 * Every trade source has this one shape: an async iterable of trades in time order per symbol.
 * A finite source (a file, a history range) ends; a live one runs until aborted. A failure it
 * cannot recover from is thrown as an AppError (`retriable` says whether restarting may help).
 */
export interface TradeSource {
  /** `synthetic`, `cryptocompare`, `cryptocompare-history` or `file`, for logs and /health. */
  readonly kind: string;
  trades(options: SourceRunOptions): AsyncIterable<Tick>;
}
