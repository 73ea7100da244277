/**
 * The slice of TradingView's Datafeed API this datafeed implements, declared here so the package
 * needs no licensed typings. Shapes follow the Charting Library docs (api/interfaces/
 * Datafeed.IDatafeedChartApi, LibrarySymbolInfo, HistoryMetadata, PeriodParams).
 */
import type { Clock } from '@candlestream/core';

/** A resolution such as `1`, `60`, `1D`, `1W`; nominal, as in TradingView's typings. */
export type ResolutionString = string & { readonly __resolution?: 'ResolutionString' };

/** One bar. `time` is the bar's open time in epoch milliseconds (TradingView's Bar). */
export interface Bar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume?: number;
}

export interface PeriodParams {
  /** Epoch seconds, inclusive. */
  from: number;
  /** Epoch seconds, exclusive. */
  to: number;
  /** Bars wanted before `to`; takes priority over `from` when the datafeed supports it. */
  countBack: number;
  /** True for the first request of a symbol and resolution: its newest bar is the realtime one. */
  firstDataRequest: boolean;
}

export interface HistoryMetadata {
  /** No data in the requested range (with nextTime) or none at all (without). */
  noData?: boolean;
  /** Open time of the newest earlier bar, epoch **milliseconds** (HistoryMetadata docs). */
  nextTime?: number | null;
}

export interface Exchange {
  value: string;
  name: string;
  desc: string;
}

export interface DatafeedSymbolType {
  name: string;
  value: string;
}

export interface DatafeedConfiguration {
  exchanges?: Exchange[];
  supported_resolutions?: ResolutionString[];
  supports_marks?: boolean;
  supports_timescale_marks?: boolean;
  supports_time?: boolean;
  symbols_types?: DatafeedSymbolType[];
  /** UDF extensions (UdfCompatibleConfiguration); harmless to the JS API. */
  supports_search?: boolean;
  supports_group_request?: boolean;
}

export interface LibrarySymbolInfo {
  name: string;
  full_name?: string;
  ticker?: string;
  description: string;
  type: string;
  session: string;
  timezone: string;
  exchange: string;
  listed_exchange: string;
  format: 'price' | 'volume';
  minmov: number;
  pricescale: number;
  has_intraday?: boolean;
  has_daily?: boolean;
  has_weekly_and_monthly?: boolean;
  supported_resolutions?: ResolutionString[];
  intraday_multipliers?: string[];
  daily_multipliers?: string[];
  weekly_multipliers?: string[];
  volume_precision?: number;
  data_status?: 'streaming' | 'endofday' | 'delayed_streaming';
  currency_code?: string;
}

export interface SearchSymbolResultItem {
  symbol: string;
  full_name: string;
  description: string;
  exchange: string;
  ticker?: string;
  type: string;
}

export type OnReadyCallback = (configuration: DatafeedConfiguration) => void;
export type SearchSymbolsCallback = (items: SearchSymbolResultItem[]) => void;
export type ResolveCallback = (symbolInfo: LibrarySymbolInfo) => void;
export type HistoryCallback = (bars: Bar[], meta?: HistoryMetadata) => void;
export type SubscribeBarsCallback = (bar: Bar) => void;
export type ServerTimeCallback = (serverTime: number) => void;
export type DatafeedErrorCallback = (reason: string) => void;

/** Lets a DOM handler (`(ev: MessageEvent) => any`) stand where ours is declared. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

/** What the datafeed uses of a WebSocket; the DOM's WebSocket is one. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** What the datafeed uses of fetch; the global fetch is one. */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal },
) => Promise<{ readonly ok: boolean; readonly status: number; text(): Promise<string> }>;

export type ConnectionState = 'connecting' | 'open' | 'closed' | 'reconnecting';

export type LogFunction = (message: string, details?: Record<string, unknown>) => void;

export interface ReconnectOptions {
  /** Delay ceiling of the first retry; doubles per failed attempt. */
  initialDelayMs: number;
  /** No retry waits longer than this. */
  maxDelayMs: number;
  /** 0 = exact delays, 1 = uniform in [0, ceiling]. Default 0.5, so many pages do not retry together. */
  jitter?: number;
}

/**
 * A backfill of `symbol` ended (the /stream `history` message, docs/API.md): the stored history
 * of every interval of it changed over [from, to) (epoch ms), so charts read it again.
 */
export interface HistoryUpdate {
  symbol: string;
  /** The job; `status` is `done` or `failed` (others may come from a newer server). */
  backfill: { id: string; status: string };
  from: number;
  to: number;
}

export interface DatafeedOptions {
  /** The datastore, e.g. `http://localhost:3000` (UDF at /udf, stream at /stream). */
  baseUrl: string;
  /** A JWT (AUTH_MODE=jwt): `Authorization: Bearer` on fetch, `?token=` on the WebSocket. */
  token?: string;
  /** Default: the global fetch. */
  fetch?: FetchLike;
  /** Default: the global WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Default 500 / 15 000 ms, jitter 0.5. */
  reconnect?: ReconnectOptions;
  /** Silence after which the socket is presumed dead and replaced. Default 45 000 ms. */
  staleAfterMs?: number;
  /** Abandon an HTTP request after this long. Default 15 000 ms. */
  requestTimeoutMs?: number;
  onConnectionState?: (state: ConnectionState) => void;
  /**
   * Told of every /stream `history` message of a subscribed symbol, after the listeners'
   * onResetCacheNeeded (a page that shows backfill progress clears it here).
   */
  onHistory?: (update: HistoryUpdate) => void;
  /** Failures that have no TradingView callback (stream errors, a throwing listener). */
  log?: LogFunction;
  /** Whose timers the datafeed uses (callbacks, deadlines, reconnects). Default core's systemClock. */
  clock?: Clock;
}

/** TradingView's IDatafeedChartApi & IExternalDatafeed, plus destroy(). */
export interface CandlestreamDatafeed {
  onReady: (callback: OnReadyCallback) => void;
  searchSymbols: (
    userInput: string,
    exchange: string,
    symbolType: string,
    onResult: SearchSymbolsCallback,
  ) => void;
  resolveSymbol: (
    symbolName: string,
    onResolve: ResolveCallback,
    onError: DatafeedErrorCallback,
    extension?: unknown,
  ) => void;
  getBars: (
    symbolInfo: LibrarySymbolInfo,
    resolution: ResolutionString,
    periodParams: PeriodParams,
    onResult: HistoryCallback,
    onError: DatafeedErrorCallback,
  ) => void;
  subscribeBars: (
    symbolInfo: LibrarySymbolInfo,
    resolution: ResolutionString,
    onTick: SubscribeBarsCallback,
    listenerGuid: string,
    onResetCacheNeeded: () => void,
  ) => void;
  unsubscribeBars: (listenerGuid: string) => void;
  getServerTime: (callback: ServerTimeCallback) => void;
  /** Closes the socket, aborts requests, clears timers; no callback runs afterwards. */
  destroy: () => void;
}
