/**
 * A TradingView JS Datafeed (Charting Library docs: connecting_data/Datafeed-API) over the
 * datastore: history from /udf, live bars from /stream. Pass it as the widget's `datafeed`.
 */
import type { Interval, TimerHandle } from '@candlestream/core';
import {
  RESOLUTIONS,
  systemClock,
  errorMessage,
  parseResolution,
  parseSymbol,
  toResolution,
} from '@candlestream/core';
import { BarStream, seriesKey } from './stream.js';
import type { StreamBar } from './stream.js';
import type {
  Bar,
  CandlestreamDatafeed,
  HistoryUpdate,
  DatafeedConfiguration,
  DatafeedOptions,
  LibrarySymbolInfo,
  LogFunction,
  ResolutionString,
  SubscribeBarsCallback,
  WebSocketConstructor,
} from './types.js';
import {
  UdfClient,
  UdfError,
  toConfiguration,
  toHistory,
  toSearchResults,
  toSymbolInfo,
} from './udf.js';

export const DEFAULT_RECONNECT = { initialDelayMs: 500, maxDelayMs: 15_000, jitter: 0.5 };
/** Three of the server's 15 s heartbeats. */
export const DEFAULT_STALE_AFTER_MS = 45_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;
/** Results per symbol search: the datastore's default (its maximum is 100). */
const SEARCH_LIMIT = 30;
/**
 * How far past `to` a first request reaches, so a slow browser clock still gets the forming bar
 * (PeriodParams docs: on the first request `to` may be ignored, it comes from Date.now()).
 */
const FIRST_REQUEST_LOOKAHEAD_S = 86_400;

interface Listener {
  symbol: string;
  interval: Interval;
  onTick: SubscribeBarsCallback;
  onResetCacheNeeded: () => void;
  /** Open time of the newest bar this listener has (from getBars or a tick); older ones drop. */
  lastTime: number;
}

const consoleLog: LogFunction = (message, details) =>
  console.warn(`[datafeed] ${message}`, details ?? '');

/** `BTC-USD` for `btcusd` or `Candlestream:BTC-USD`: the form /stream names series by. */
function canonical(symbol: string): string {
  const raw = symbol.replace(/^[^:]*:/, '');
  try {
    return parseSymbol(raw);
  } catch {
    return raw; // the server will say what is wrong with it
  }
}

/** The datastore's symbol for a TradingView symbol: its `ticker`, else its `name`. */
function symbolOf(info: LibrarySymbolInfo): string {
  return canonical(info.ticker ?? info.name);
}

/** What onReady answers when /udf/config cannot be had: the datastore's fixed capabilities. */
function fallbackConfiguration(): DatafeedConfiguration {
  return {
    supports_search: true,
    supports_group_request: false,
    supports_marks: false,
    supports_timescale_marks: false,
    supports_time: true,
    supported_resolutions: [...RESOLUTIONS] as ResolutionString[],
  };
}

/** The realtime WebSocket URL: `/stream` beside `/udf`, ws(s) for http(s), the token as `?token=`. */
export function streamUrl(baseUrl: string, token?: string): string {
  const page = (globalThis as unknown as { location?: { href: string } }).location;
  const url = new URL(`${baseUrl.replace(/\/+$/, '')}/stream`, page?.href);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  if (token) url.searchParams.set('token', token);
  return url.toString();
}

function globalWebSocket(): WebSocketConstructor {
  const ctor = (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (ctor) return ctor;
  return class {
    constructor() {
      throw new Error('no WebSocket in this environment; pass options.WebSocket');
    }
  } as unknown as WebSocketConstructor;
}

export function createDatafeed(options: DatafeedOptions): CandlestreamDatafeed {
  const log = options.log ?? consoleLog;
  const clock = options.clock ?? systemClock;
  const udf = new UdfClient({
    clock,
    baseUrl: options.baseUrl,
    fetch: options.fetch ?? ((url, init) => globalThis.fetch(url, init)),
    timeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    ...(options.token ? { token: options.token } : {}),
  });
  const listeners = new Map<string, Listener>();
  const bySeries = new Map<string, Set<Listener>>();
  /** Newest bar time handed out per series: seeds the no-older-bar rule of new listeners. */
  const lastBarTime = new Map<string, number>();
  const timers = new Set<TimerHandle>();
  let destroyed = false;

  /**
   * Every callback runs in a later macrotask: TradingView's Datafeed API docs ("Asynchronous
   * callbacks") require it, even when the data is at hand, or the library can overflow its stack.
   */
  const later = (callback: () => void): void => {
    if (destroyed) return;
    const timer = clock.setTimeout(() => {
      timers.delete(timer);
      if (!destroyed) callback();
    }, 0);
    timers.add(timer);
  };

  /** A request's outcome through later(): its value to `ok`, its failure to `fail`. */
  const settle = <T>(
    work: Promise<T>,
    ok: (value: T) => void,
    fail: (error: unknown) => void,
  ): void => {
    void work.then(
      (value) => later(() => ok(value)),
      (err: unknown) => later(() => fail(err)),
    );
  };

  const remember = (key: string, time: number): void => {
    lastBarTime.set(key, Math.max(time, lastBarTime.get(key) ?? -Infinity));
  };

  const onBar = ({ symbol, interval, bar }: StreamBar): void => {
    const key = seriesKey(canonical(symbol), interval);
    const group = bySeries.get(key);
    if (!group) return;
    remember(key, bar.time);
    for (const listener of group) {
      // The library updates the newest bar or appends one; an older bar breaks it
      // (IDatafeedChartApi.subscribeBars). Same time = an update of the newest bar.
      if (bar.time < listener.lastTime) continue;
      listener.lastTime = bar.time;
      try {
        listener.onTick({ ...bar }); // each listener its own copy: the library may modify it
      } catch (err) {
        log('a bar listener threw', { error: errorMessage(err) });
      }
    }
  };

  /**
   * Stored history changed (a backfill ended): every listener of the symbol, whatever its
   * interval (history is stored as minutes and every interval is built from them), is told to
   * drop its cache (IDatafeedChartApi.subscribeBars: onResetCacheNeeded; the library then
   * refetches after chart.resetData()).
   */
  const onHistory = (update: HistoryUpdate): void => {
    const symbol = canonical(update.symbol);
    for (const [guid, listener] of listeners) {
      if (listener.symbol !== symbol) continue;
      later(() => {
        if (listeners.get(guid) === listener) listener.onResetCacheNeeded();
      });
    }
    later(() => options.onHistory?.({ ...update, symbol }));
  };

  const stream = new BarStream({
    clock,
    url: streamUrl(options.baseUrl, options.token),
    WebSocket: options.WebSocket ?? globalWebSocket(),
    reconnect: { ...DEFAULT_RECONNECT, ...options.reconnect },
    staleAfterMs: options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
    onBar,
    onHistory,
    // Bars may have been missed while the socket was down: each listener's onResetCacheNeeded
    // clears the library's cache; the page then calls chart.resetData() to refetch (README.md).
    onResync: () => {
      for (const [guid, listener] of listeners) {
        later(() => {
          if (listeners.get(guid) === listener) listener.onResetCacheNeeded();
        });
      }
    },
    onState: (state) => {
      if (!destroyed) options.onConnectionState?.(state);
    },
    log,
  });

  const unsubscribeBars = (listenerGuid: string): void => {
    const listener = listeners.get(listenerGuid);
    if (!listener) return;
    listeners.delete(listenerGuid);
    const key = seriesKey(listener.symbol, listener.interval);
    const group = bySeries.get(key);
    group?.delete(listener);
    if (group?.size === 0) {
      bySeries.delete(key);
      stream.unwatch(listener.symbol, listener.interval);
    }
  };

  return {
    onReady: (callback) => {
      settle(udf.json('config').then(toConfiguration), callback, (err) => {
        // Without a configuration the chart never starts; the datastore's is well known.
        log('/udf/config failed; using the defaults', { error: errorMessage(err) });
        callback(fallbackConfiguration());
      });
    },

    searchSymbols: (userInput, exchange, symbolType, onResult) => {
      const params = {
        query: userInput,
        type: symbolType || undefined,
        exchange: exchange || undefined,
        limit: SEARCH_LIMIT,
      };
      settle(udf.json('search', params).then(toSearchResults), onResult, (err) => {
        log('symbol search failed', { error: errorMessage(err) });
        onResult([]); // the callback has no error path
      });
    },

    resolveSymbol: (symbolName, onResolve, onError) => {
      settle(udf.json('symbols', { symbol: symbolName }).then(toSymbolInfo), onResolve, (err) => {
        // A refusal names an unknown symbol; an outage or a 401 keeps its own message.
        const refused = err instanceof UdfError && [200, 400, 404].includes(err.status ?? 0);
        onError(refused ? 'unknown_symbol' : errorMessage(err));
      });
    },

    getBars: (symbolInfo, resolution, periodParams, onResult, onError) => {
      let interval: Interval;
      try {
        interval = parseResolution(resolution);
      } catch (err) {
        later(() => onError(errorMessage(err)));
        return;
      }
      const symbol = symbolOf(symbolInfo);
      const { countBack, firstDataRequest } = periodParams;
      const from = Math.max(0, Math.floor(periodParams.from));
      // countback takes priority server-side: exactly that many bars before `to` (docs/API.md).
      const countback = countBack > 0 ? Math.floor(countBack) : undefined;
      // Only with countback: a longer [from, to) could pass the server's MAX_BARS.
      const lookahead = firstDataRequest && countback ? FIRST_REQUEST_LOOKAHEAD_S : 0;
      const to = Math.max(from, Math.floor(periodParams.to) + lookahead);
      const params = { symbol, resolution: toResolution(interval), from, to, countback };
      settle(
        udf.json('history', params).then(toHistory),
        (history) => {
          if ('noData' in history) {
            onResult(
              [],
              history.nextTimeMs === undefined
                ? { noData: true }
                : { noData: true, nextTime: history.nextTimeMs },
            );
            return;
          }
          const bars: Bar[] =
            countback === undefined ? history.bars : history.bars.slice(-countback);
          const newest = bars[bars.length - 1];
          if (firstDataRequest && newest) {
            const key = seriesKey(symbol, interval);
            remember(key, newest.time);
            // A chart refetching after a reset has this bar now; its listener must not go back.
            for (const listener of bySeries.get(key) ?? []) {
              listener.lastTime = Math.max(listener.lastTime, newest.time);
            }
          }
          onResult(bars, { noData: false });
        },
        (err) => onError(errorMessage(err)),
      );
    },

    subscribeBars: (symbolInfo, resolution, onTick, listenerGuid, onResetCacheNeeded) => {
      if (destroyed) return;
      const interval = (() => {
        try {
          return parseResolution(resolution);
        } catch (err) {
          log('subscribeBars: unsupported resolution', { resolution, error: errorMessage(err) });
          return undefined;
        }
      })();
      if (!interval) return;
      unsubscribeBars(listenerGuid); // a reused guid replaces its listener
      const symbol = symbolOf(symbolInfo);
      const key = seriesKey(symbol, interval);
      const listener: Listener = {
        symbol,
        interval,
        onTick,
        onResetCacheNeeded,
        lastTime: lastBarTime.get(key) ?? -Infinity,
      };
      listeners.set(listenerGuid, listener);
      let group = bySeries.get(key);
      if (!group) {
        group = new Set();
        bySeries.set(key, group);
        stream.watch(symbol, interval); // one subscribe per series, however many listeners
      }
      group.add(listener);
    },

    unsubscribeBars,

    getServerTime: (callback) => {
      settle(
        udf.text('time'),
        (text) => {
          const seconds = Number(text.trim());
          if (Number.isInteger(seconds)) callback(seconds);
          else log('/udf/time answered something that is not epoch seconds', { text });
        },
        (err) => log('/udf/time failed', { error: errorMessage(err) }),
      );
    },

    destroy: () => {
      if (destroyed) return;
      stream.close(); // reports 'closed' once, then nothing more
      destroyed = true;
      udf.close();
      for (const timer of timers) clock.clearTimeout(timer);
      timers.clear();
      listeners.clear();
      bySeries.clear();
    },
  };
}
