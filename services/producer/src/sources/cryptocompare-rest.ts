/**
 * CryptoCompare REST history (`/data/v2/histominute`, `histohour`, `histoday`), as candles of a
 * range and as trades.
 *
 * Each endpoint returns `limit + 1` candles ending at the one that holds `toTs` (epoch seconds),
 * oldest first; longer ranges are read by paging backwards with `toTs`. Errors arrive as HTTP 200
 * with `{"Response":"Error","Message":…,"Type":…}` (Type 99: rate limit), or as HTTP 429 with that
 * body. A candle whose prices are all 0 is a period without trading (mid-series as well as before
 * the pair's first trade). Without `tryConversion=false` a pair the exchange does not list is
 * answered with rows derived through another pair (`conversionType` other than `direct`).
 * Minute history is kept about 7 days; older minutes are refused.
 * (min-api.cryptocompare.com/documentation, "Historical Minute/Hourly/Daily OHLCV")
 */
import type { BackoffOptions, Clock, EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import {
  AppError,
  DAY_MS,
  DEFAULT_BACKOFF,
  HOUR_MS,
  MINUTE_MS,
  SECOND_MS,
  invalidArgument,
  retry,
  splitSymbol,
  systemClock,
  toIso,
} from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { SourceRunOptions, TradeSource } from './source.js';

export const DEFAULT_REST_URL = 'https://min-api.cryptocompare.com';
/**
 * The exchange whose trades we stream and backfill. CCCAGG (the aggregate index) has no trade
 * channel, so live trades must come from one exchange; history uses the same one so the two agree.
 */
export const DEFAULT_EXCHANGE = 'Coinbase';
/** histominute, histohour and histoday refuse a larger `limit`. */
export const HISTO_MAX_LIMIT = 2_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_ATTEMPTS = 5;
/** Where the synthetic trades of a minute sit: open first, close last. */
const OPEN_OFFSET_MS = 0;
const FIRST_EXTREME_OFFSET_MS = 15 * SECOND_MS;
const SECOND_EXTREME_OFFSET_MS = 30 * SECOND_MS;
const CLOSE_OFFSET_MS = 45 * SECOND_MS;

/** The bar length of each history endpoint; `time` of a day candle is 00:00 UTC. */
export type CcResolution = 'minute' | 'hour' | 'day';
const ENDPOINTS: Record<CcResolution, { path: string; stepMs: number }> = {
  minute: { path: 'histominute', stepMs: MINUTE_MS },
  hour: { path: 'histohour', stepMs: HOUR_MS },
  day: { path: 'histoday', stepMs: DAY_MS },
};

export type FetchFn = typeof fetch;

/** One history candle as CryptoCompare sends it; `time` is the bar's open, epoch seconds. */
export interface CcCandle {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** Volume in the base currency (BTC of BTC-USD). */
  volumefrom: number;
  /** Volume in the quote currency. */
  volumeto: number;
}

/** A histominute candle: `time` is the minute's open. */
export type CcMinuteCandle = CcCandle;

export interface RetryOptions {
  /** Tries in all, the first included. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  random?: () => number;
  signal?: AbortSignal;
  logger?: Logger;
  /** Whose timers the backoffs wait on; default systemClock. */
  clock?: Clock;
}

/**
 * Runs `attempt` until it succeeds, it fails with a non-retriable error, or `maxAttempts` tries
 * have failed; waits a backoff between tries. What it throws is always an AppError.
 */
export async function withRetries<T>(
  what: string,
  attempt: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  // Failures become AppErrors before retry sees them; an abort during a wait ends with the
  // signal's own reason.
  return retry(() => attempt().catch((err: unknown) => Promise.reject(AppError.from(err))), {
    maxAttempts,
    backoff: options.backoff ?? DEFAULT_BACKOFF,
    ...(options.random ? { random: options.random } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    onRetry: ({ error, tried, delayMs }) =>
      options.logger?.warn(`${what} failed; retrying`, { tried, maxAttempts, delayMs, err: error }),
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(endpoint: string, message: string, details?: Record<string, unknown>): AppError {
  return new AppError('MALFORMED_MESSAGE', `${endpoint}: ${message}`, {
    retriable: false,
    ...(details ? { details } : {}),
  });
}

const CANDLE_FIELDS = ['time', 'open', 'high', 'low', 'close', 'volumefrom', 'volumeto'] as const;

function parseCandle(endpoint: string, value: unknown, index: number): CcCandle {
  if (!isRecord(value)) throw malformed(endpoint, `candle ${index} is not an object`);
  for (const field of CANDLE_FIELDS) {
    const v = value[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw malformed(endpoint, `candle ${index} has no valid ${field}`, { value: v });
    }
  }
  const c = value as unknown as CcCandle;
  if (!Number.isInteger(c.time)) {
    throw malformed(endpoint, `candle ${index} time is not whole seconds`);
  }
  const { time, open, high, low, close, volumefrom, volumeto } = c;
  return { time, open, high, low, close, volumefrom, volumeto };
}

/**
 * The in-body refusal of a range the endpoint does not keep (minute history older than ~7 days;
 * hour history older than a plan keeps, worded the same way). Matched on the message, the only
 * thing that tells it apart from other Type 2 errors.
 */
const BEYOND_HISTORY_RE = /only (?:available|stored|kept) for the (?:last|past)|\b7 days\b/i;

/** CryptoCompare's in-body error: rate limits are retriable, a refused key or bad request not. */
function upstreamError(endpoint: string, body: Record<string, unknown>): AppError {
  const message = typeof body['Message'] === 'string' ? body['Message'] : 'unknown error';
  const details = { type: body['Type'], upstreamMessage: message };
  if (body['Type'] === 99 || /rate limit/i.test(message)) {
    return new AppError('RATE_LIMITED', `${endpoint} rate limited: ${message}`, { details });
  }
  if (/api[ _]?key|auth key/i.test(message)) {
    return new AppError('UNAUTHENTICATED', `${endpoint} refused the API key: ${message}`, {
      retriable: false,
      details,
    });
  }
  if (BEYOND_HISTORY_RE.test(message)) {
    // Asking again cannot help: the source does not have these bars.
    return new AppError('NOT_FOUND', `${endpoint} does not keep this range: ${message}`, {
      retriable: false,
      details: { ...details, beyondHistory: true },
    });
  }
  return new AppError('INVALID_ARGUMENT', `${endpoint} error: ${message}`, {
    retriable: false,
    details,
  });
}

/**
 * Maps one history answer to its candles (ascending) or to the AppError it means. `endpoint`
 * (histominute, histohour, histoday) only names it in messages: the three answer alike.
 */
export function parseHistominuteResponse(
  httpStatus: number,
  bodyText: string,
  endpoint = 'histominute',
): CcCandle[] {
  const details = { httpStatus };
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch (err) {
    body = err;
  }
  if (httpStatus >= 500) {
    throw new AppError('UNAVAILABLE', `${endpoint} answered HTTP ${httpStatus}`, { details });
  }
  if (httpStatus === 429) {
    // The body is the in-body rate-limit error; its message says which limit was hit.
    const message = isRecord(body) && typeof body['Message'] === 'string' ? body['Message'] : '';
    throw new AppError('RATE_LIMITED', `${endpoint} answered HTTP 429 ${message}`.trim(), {
      details: isRecord(body) ? { ...details, upstreamMessage: message } : details,
    });
  }
  if (httpStatus === 401 || httpStatus === 403) {
    throw new AppError('UNAUTHENTICATED', `${endpoint} answered HTTP ${httpStatus}`, {
      retriable: false,
      details,
    });
  }
  if (httpStatus !== 200) {
    throw new AppError('INVALID_ARGUMENT', `${endpoint} answered HTTP ${httpStatus}`, {
      retriable: false,
      details,
    });
  }
  if (body instanceof Error) {
    throw new AppError('MALFORMED_MESSAGE', `${endpoint} answered with invalid JSON`, {
      retriable: false,
      cause: body,
    });
  }
  if (!isRecord(body)) throw malformed(endpoint, 'the answer is not a JSON object');
  if (body['Response'] === 'Error') throw upstreamError(endpoint, body);
  if (body['Response'] !== 'Success') {
    throw malformed(endpoint, 'the answer has no Response "Success"', {
      response: body['Response'],
    });
  }
  const data = body['Data'];
  const rows = isRecord(data) ? data['Data'] : undefined;
  if (!Array.isArray(rows)) throw malformed(endpoint, 'the answer has no Data.Data array');
  return rows.map((row, i) => parseCandle(endpoint, row, i)).sort((a, b) => a.time - b.time);
}

export interface HistoryPageRequest {
  restUrl?: string;
  apiKey: string;
  symbol: MarketSymbol;
  exchange?: string;
  /** Default 'minute' (histominute). */
  resolution?: CcResolution;
  /** The newest bar wanted, epoch seconds (`toTs`). */
  toTsSec: number;
  /** Bars before `toTsSec`; CryptoCompare returns `limit + 1`. 1 to 2000, default 2000. */
  limit?: number;
  fetch?: FetchFn;
  signal?: AbortSignal;
  requestTimeoutMs?: number;
  /** Whose timer the request timeout runs on (real waiting on I/O: production's systemClock). */
  clock?: Clock;
}

/** One history call, no retries: the candles, ascending, or an AppError saying what failed. */
export async function fetchHistoryPage(request: HistoryPageRequest): Promise<CcCandle[]> {
  const endpoint = ENDPOINTS[request.resolution ?? 'minute'].path;
  const limit = request.limit ?? HISTO_MAX_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > HISTO_MAX_LIMIT) {
    throw invalidArgument(`${endpoint} limit must be 1 to ${HISTO_MAX_LIMIT}, not ${limit}`);
  }
  const { base, quote } = splitSymbol(request.symbol);
  const restUrl = (request.restUrl ?? DEFAULT_REST_URL).replace(/\/+$/, '');
  const url = new URL(`${restUrl}/data/v2/${endpoint}`);
  url.searchParams.set('fsym', base);
  url.searchParams.set('tsym', quote);
  url.searchParams.set('limit', String(limit));
  url.searchParams.set('toTs', String(request.toTsSec));
  url.searchParams.set('e', request.exchange ?? DEFAULT_EXCHANGE);
  // Without it a pair the exchange does not list comes back converted through another pair
  // (rows with conversionType "multiply", "invert", …), which are not trades of this pair.
  url.searchParams.set('tryConversion', 'false');

  // Our own timer rather than AbortSignal.timeout, so nothing outlives the request.
  const controller = new AbortController();
  const timeoutMs = request.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const clock = request.clock ?? systemClock;
  const timer = clock.setTimeout(() => controller.abort(), timeoutMs);
  const onAbort = (): void => controller.abort();
  request.signal?.addEventListener('abort', onAbort, { once: true });
  if (request.signal?.aborted) controller.abort();
  try {
    const response = await (request.fetch ?? fetch)(url, {
      // The header form keeps the key out of URLs that proxies and logs record.
      headers: { authorization: `Apikey ${request.apiKey}`, accept: 'application/json' },
      signal: controller.signal,
    });
    const text = await response.text();
    return parseHistominuteResponse(response.status, text, endpoint);
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (request.signal?.aborted) {
      throw new AppError('CANCELLED', `${endpoint} request aborted`, { cause: err });
    }
    if (controller.signal.aborted) {
      throw new AppError('TIMEOUT', `${endpoint} gave no answer in ${timeoutMs} ms`, {
        cause: err,
      });
    }
    throw new AppError('UNAVAILABLE', `${endpoint} request failed: ${String(err)}`, {
      cause: err,
    });
  } finally {
    clock.clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
  }
}

/** One histominute call (`fetchHistoryPage` at minute resolution). */
export function fetchMinuteHistory(request: HistoryPageRequest): Promise<CcCandle[]> {
  return fetchHistoryPage({ ...request, resolution: 'minute' });
}

/**
 * A period without trading: CryptoCompare sends every price as 0 (volumes too). Such a row is
 * no candle; a price of 0 is never a trade.
 */
export function isEmptyCandle(c: CcCandle): boolean {
  return c.open === 0 && c.high === 0 && c.low === 0 && c.close === 0;
}

/** Part of a requested range the source could not provide, and why. */
export interface UnavailableRange {
  /** [fromMs, toMs), on bar boundaries. */
  fromMs: EpochMs;
  toMs: EpochMs;
  /**
   * What the page covering it answered, after its retries. `retriable` false: asking again
   * cannot help (minutes beyond the ~7 days kept, a pair the exchange does not list, a refused
   * key); `details.beyondHistory` marks the history limit.
   */
  error: AppError;
}

export interface CandleRange {
  /** The bars with trading inside the range, ascending; periods without trading are absent. */
  candles: CcCandle[];
  /** Empty when the source answered for the whole range. */
  unavailable: UnavailableRange[];
}

export interface CandleRangeRequest extends Omit<HistoryPageRequest, 'toTsSec' | 'limit'> {
  fromMs: EpochMs;
  toMs: EpochMs;
  /** Bars asked per call; default (and most) 2000. */
  pageLimit?: number;
  retry?: Omit<RetryOptions, 'signal'>;
}

/**
 * The whole bars inside [fromMs, toMs) at `resolution` (default minute), ascending: a bar that
 * starts before `fromMs` or ends after `toMs` is left out (it is partly outside, or still
 * forming). Pages backwards from the newest bar, each page retried on its own.
 *
 * Bars without trading (all prices 0) are skipped wherever they are, and never end the fetch:
 * paging stops only at `fromMs`, or when a whole page has no trading (before the pair's first
 * trade there is nothing older). A page that still fails after its retries ends the paging: the
 * bars already fetched are kept and what is left, from `fromMs` up to that page's newest bar, is
 * reported in `unavailable`. Only cancellation (the signal) rejects.
 */
export async function fetchCandles(request: CandleRangeRequest): Promise<CandleRange> {
  const { fromMs, toMs, pageLimit = HISTO_MAX_LIMIT, retry = {}, ...call } = request;
  const resolution = call.resolution ?? 'minute';
  const { path: endpoint, stepMs } = ENDPOINTS[resolution];
  const stepSec = stepMs / SECOND_MS;
  const firstSec = (Math.ceil(fromMs / stepMs) * stepMs) / SECOND_MS;
  const endSec = (Math.floor(toMs / stepMs) * stepMs) / SECOND_MS;
  const byTime = new Map<number, CcCandle>();
  const unavailable: UnavailableRange[] = [];
  let newestSec = endSec - stepSec;
  while (newestSec >= firstSec) {
    const toTsSec = newestSec;
    const limit = Math.min(pageLimit, Math.max(1, (toTsSec - firstSec) / stepSec));
    let page: CcCandle[];
    try {
      page = await withRetries(
        endpoint,
        () => fetchHistoryPage({ ...call, resolution, toTsSec, limit }),
        { ...retry, signal: call.signal, ...(call.clock ? { clock: call.clock } : {}) },
      );
    } catch (err) {
      const error = AppError.from(err);
      if (call.signal?.aborted || error.code === 'CANCELLED') throw error;
      unavailable.push({
        fromMs: firstSec * SECOND_MS,
        toMs: (toTsSec + stepSec) * SECOND_MS,
        error,
      });
      break;
    }
    const wanted = page.filter((c) => c.time >= firstSec && c.time <= toTsSec);
    const traded = wanted.filter((c) => !isEmptyCandle(c));
    // Nothing returned, or a whole page without trading: the start of the series.
    if (traded.length === 0) break;
    for (const c of traded) byTime.set(c.time, c);
    newestSec = wanted[0]!.time - stepSec;
  }
  const candles = [...byTime.values()].sort((a, b) => a.time - b.time);
  return { candles, unavailable };
}

/** `fetchCandles` at minute resolution (histominute). */
export function fetchMinuteCandles(request: CandleRangeRequest): Promise<CandleRange> {
  return fetchCandles({ ...request, resolution: 'minute' });
}

/** "BTC-USD 2024-01-01T00:00:00.000Z..2024-01-08T00:00:00.000Z", for logs and errors. */
export function describeUnavailable(symbol: MarketSymbol, range: UnavailableRange): string {
  return `${symbol} ${toIso(range.fromMs)}..${toIso(range.toMs)} (${range.error.message})`;
}

/**
 * Up to four trades inside the candle's minute whose aggregation gives back its open, high,
 * low and close exactly and whose sizes sum exactly to `volumefrom`: open at +0 s, the extreme
 * the price reached first at +15 s (the low on an up candle), the other at +30 s, close at
 * +45 s; prices already present are not repeated. Sizes halve (V/2, V/4, …, the last repeating
 * the previous), so every partial sum is exact in binary floating point. A minute without
 * volume had no trades. Ids depend only on the candle, so fetching it again changes nothing
 * downstream. An inconsistent candle (high below close, say) still gives trades at its prices.
 */
export function candleToTrades(
  symbol: MarketSymbol,
  candle: CcCandle,
  exchange: string = DEFAULT_EXCHANGE,
): Tick[] {
  const volume = candle.volumefrom;
  if (!(volume > 0)) return [];
  const { open, high, low, close } = candle;
  const extremes: [number, number][] =
    close >= open
      ? [
          [low, FIRST_EXTREME_OFFSET_MS],
          [high, SECOND_EXTREME_OFFSET_MS],
        ]
      : [
          [high, FIRST_EXTREME_OFFSET_MS],
          [low, SECOND_EXTREME_OFFSET_MS],
        ];
  const path: { price: number; offsetMs: number }[] = [{ price: open, offsetMs: OPEN_OFFSET_MS }];
  for (const [price, offsetMs] of extremes) {
    if (price !== open && price !== close && price > 0) path.push({ price, offsetMs });
  }
  if (path.length > 1 || close !== open) path.push({ price: close, offsetMs: CLOSE_OFFSET_MS });

  const minuteMs = candle.time * SECOND_MS;
  return path.map(({ price, offsetMs }, k) => {
    const halvings = k === path.length - 1 ? k : k + 1;
    // Below ~1e-307 halving loses bits; keep sizes positive, the sum then is approximate.
    const size = Math.max(volume / 2 ** halvings, Number.MIN_VALUE);
    return {
      v: 1,
      symbol,
      ts: minuteMs + offsetMs,
      price,
      size,
      side: 'unknown',
      id: `cc-hist:${exchange}:${candle.time}:${k}`,
      source: 'backfill',
    };
  });
}

export interface CryptoCompareHistoryOptions {
  apiKey: string;
  symbols: readonly MarketSymbol[];
  /** Trades of the whole minutes inside [from, to) are yielded. */
  from: EpochMs;
  to: EpochMs;
  exchange?: string;
  restUrl?: string;
  logger: Logger;
  fetch?: FetchFn;
  requestTimeoutMs?: number;
  pageLimit?: number;
  retry?: Omit<RetryOptions, 'signal' | 'logger' | 'clock'>;
  /** Request timeouts and backoffs run on it; default systemClock. */
  clock?: Clock;
}

/** Per symbol, what the history source could not fetch; carried by its final error. */
export interface UnavailableHistory {
  symbol: MarketSymbol;
  from: string;
  to: string;
  code: AppError['code'];
  retriable: boolean;
  reason: string;
}

/**
 * The one error a history run ends with when parts of its range could not be had, after every
 * trade that could be was yielded. Not retriable unless some part may still come on a retry
 * (a lasting rate limit, an outage): minutes beyond the ~7 days kept never will.
 */
export function historyIncomplete(
  missing: readonly { symbol: MarketSymbol; range: UnavailableRange }[],
): AppError {
  const first = missing[0]!.range.error;
  const retriable = missing.some((m) => m.range.error.retriable);
  const unavailable: UnavailableHistory[] = missing.map(({ symbol, range }) => ({
    symbol,
    from: toIso(range.fromMs),
    to: toIso(range.toMs),
    code: range.error.code,
    retriable: range.error.retriable,
    reason: range.error.message,
  }));
  const what = missing.map((m) => describeUnavailable(m.symbol, m.range)).join('; ');
  // One cause keeps its code (a refused key stays UNAUTHENTICATED); mixed ones are summed up.
  const codes = new Set(missing.map((m) => m.range.error.code));
  const mixed = retriable
    ? missing.find((m) => m.range.error.retriable)!.range.error.code
    : 'NOT_FOUND';
  return new AppError(
    codes.size === 1 ? first.code : mixed,
    `CryptoCompare could not provide ${what}`,
    {
      retriable,
      cause: first,
      details: { unavailable },
    },
  );
}

/**
 * A finite source: the trades `candleToTrades` makes of every minute in [from, to), ascending,
 * one symbol after the other. Pages come newest first, so one symbol's candles are collected
 * before the first is yielded: a week of minutes is ~10,000 candles, a few MB, which is fine.
 * What could not be fetched (see `fetchCandles`) does not discard the rest: every other trade
 * is yielded, then the run ends with `historyIncomplete`, which names each missing range.
 */
export function createCryptoCompareHistorySource(
  options: CryptoCompareHistoryOptions,
): TradeSource {
  if (options.apiKey === '') throw invalidArgument('CryptoCompare API key is empty');
  if (!(options.from < options.to)) throw invalidArgument('history range: from must be < to');
  const exchange = options.exchange ?? DEFAULT_EXCHANGE;
  const logger = options.logger.child({ component: 'cryptocompare-history' });

  async function* trades(run: SourceRunOptions): AsyncGenerator<Tick> {
    const missing: { symbol: MarketSymbol; range: UnavailableRange }[] = [];
    for (const symbol of options.symbols) {
      if (run.signal.aborted) return;
      let fetched: CandleRange;
      try {
        fetched = await fetchMinuteCandles({
          restUrl: options.restUrl,
          apiKey: options.apiKey,
          symbol,
          exchange,
          fromMs: options.from,
          toMs: options.to,
          fetch: options.fetch,
          requestTimeoutMs: options.requestTimeoutMs,
          pageLimit: options.pageLimit,
          signal: run.signal,
          ...(options.clock ? { clock: options.clock } : {}),
          retry: { ...options.retry, logger },
        });
      } catch (err) {
        if (run.signal.aborted) return;
        throw err;
      }
      let count = 0;
      for (const candle of fetched.candles) {
        for (const trade of candleToTrades(symbol, candle, exchange)) {
          if (run.signal.aborted) return;
          count++;
          yield trade;
        }
      }
      const minutes = fetched.candles.length;
      logger.info('history fetched', { symbol, exchange, minutes, trades: count });
      for (const range of fetched.unavailable) {
        logger.error('history incomplete: the source could not provide a range', {
          symbol,
          exchange,
          from: toIso(range.fromMs),
          to: toIso(range.toMs),
          err: range.error,
        });
        missing.push({ symbol, range });
      }
    }
    if (missing.length > 0) throw historyIncomplete(missing);
  }

  return { kind: 'cryptocompare-history', trades };
}
