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
   * source that can (CryptoCompare) fills the gap from there; others ignore it.
   */
  resumeFrom?: ReadonlyMap<MarketSymbol, EpochMs>;
  /**
   * Newest price published per symbol: a source that models prices (`resumesPrices`) continues
   * each walk from there, so a restart does not jump back to its starting price; others ignore it.
   */
  resumePrices?: ReadonlyMap<MarketSymbol, number>;
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
  /**
   * True when the source continues from `resumePrices` (live synthetic): the producer then reads
   * the newest published prices back from the topic when it starts.
   */
  readonly resumesPrices?: boolean;
  trades(options: SourceRunOptions): AsyncIterable<Tick>;
}
