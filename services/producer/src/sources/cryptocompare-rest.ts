/**
 * CryptoCompare REST minute history (`/data/v2/histominute`), turned into trades.
 *
 * histominute returns `limit + 1` one-minute candles ending at the minute of `toTs` (epoch
 * seconds), oldest first; longer ranges are read by paging backwards with `toTs`. Errors arrive
 * as HTTP 200 with `{"Response":"Error","Message":…,"Type":…}` (Type 99: rate limit). Minutes
 * before a market's listing come back as candles whose every field is 0.
 * (min-api.cryptocompare.com/documentation, "Historical Minute OHLCV")
 */
import type { BackoffOptions, Clock, EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import {
  AppError,
  DEFAULT_BACKOFF,
  MINUTE_MS,
  SECOND_MS,
  invalidArgument,
  retry,
  splitSymbol,
  systemClock,
} from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { SourceRunOptions, TradeSource } from './source.js';

export const DEFAULT_REST_URL = 'https://min-api.cryptocompare.com';
/**
 * The exchange whose trades we stream and backfill. CCCAGG (the aggregate index) has no trade
 * channel, so live trades must come from one exchange; history uses the same one so the two agree.
 */
export const DEFAULT_EXCHANGE = 'Coinbase';
/** histominute refuses a larger `limit`. */
export const HISTOMINUTE_MAX_LIMIT = 2_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_ATTEMPTS = 5;
const SECONDS_PER_MINUTE = 60;
/** Where the synthetic trades of a minute sit: open first, close last. */
const OPEN_OFFSET_MS = 0;
const FIRST_EXTREME_OFFSET_MS = 15 * SECOND_MS;
const SECOND_EXTREME_OFFSET_MS = 30 * SECOND_MS;
const CLOSE_OFFSET_MS = 45 * SECOND_MS;

export type FetchFn = typeof fetch;

/** One histominute candle as CryptoCompare sends it; `time` is the minute's open, epoch seconds. */
export interface CcMinuteCandle {
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

function malformed(message: string, details?: Record<string, unknown>): AppError {
  return new AppError('MALFORMED_MESSAGE', `histominute: ${message}`, {
    retriable: false,
    ...(details ? { details } : {}),
  });
}

const CANDLE_FIELDS = ['time', 'open', 'high', 'low', 'close', 'volumefrom', 'volumeto'] as const;

function parseCandle(value: unknown, index: number): CcMinuteCandle {
  if (!isRecord(value)) throw malformed(`candle ${index} is not an object`);
  for (const field of CANDLE_FIELDS) {
    const v = value[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw malformed(`candle ${index} has no valid ${field}`, { value: v });
    }
  }
  const c = value as unknown as CcMinuteCandle;
  if (!Number.isInteger(c.time)) throw malformed(`candle ${index} time is not whole seconds`);
  const { time, open, high, low, close, volumefrom, volumeto } = c;
  return { time, open, high, low, close, volumefrom, volumeto };
}

/** CryptoCompare's in-body error: rate limits are retriable, a refused key or bad request not. */
function upstreamError(body: Record<string, unknown>): AppError {
  const message = typeof body['Message'] === 'string' ? body['Message'] : 'unknown error';
  const details = { type: body['Type'], upstreamMessage: message };
  if (body['Type'] === 99 || /rate limit/i.test(message)) {
    return new AppError('RATE_LIMITED', `histominute rate limited: ${message}`, { details });
  }
  if (/api[ _]?key|auth key/i.test(message)) {
    return new AppError('UNAUTHENTICATED', `histominute refused the API key: ${message}`, {
      retriable: false,
      details,
    });
  }
  return new AppError('INVALID_ARGUMENT', `histominute error: ${message}`, {
    retriable: false,
    details,
  });
}

/** Maps one histominute answer to its candles (ascending) or to the AppError it means. */
export function parseHistominuteResponse(httpStatus: number, bodyText: string): CcMinuteCandle[] {
  const details = { httpStatus };
  if (httpStatus >= 500) {
    throw new AppError('UNAVAILABLE', `histominute answered HTTP ${httpStatus}`, { details });
  }
  if (httpStatus === 429) {
    throw new AppError('RATE_LIMITED', 'histominute answered HTTP 429', { details });
  }
  if (httpStatus === 401 || httpStatus === 403) {
    throw new AppError('UNAUTHENTICATED', `histominute answered HTTP ${httpStatus}`, {
      retriable: false,
      details,
    });
  }
  if (httpStatus !== 200) {
    throw new AppError('INVALID_ARGUMENT', `histominute answered HTTP ${httpStatus}`, {
      retriable: false,
      details,
    });
  }
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch (err) {
    throw new AppError('MALFORMED_MESSAGE', 'histominute answered with invalid JSON', {
      retriable: false,
      cause: err,
    });
  }
  if (!isRecord(body)) throw malformed('the answer is not a JSON object');
  if (body['Response'] === 'Error') throw upstreamError(body);
  if (body['Response'] !== 'Success') {
    throw malformed('the answer has no Response "Success"', { response: body['Response'] });
  }
  const data = body['Data'];
  const rows = isRecord(data) ? data['Data'] : undefined;
  if (!Array.isArray(rows)) throw malformed('the answer has no Data.Data array');
  return rows.map(parseCandle).sort((a, b) => a.time - b.time);
}

export interface MinuteHistoryRequest {
  restUrl?: string;
  apiKey: string;
  symbol: MarketSymbol;
  exchange?: string;
  /** The newest minute wanted, epoch seconds (histominute's `toTs`). */
  toTsSec: number;
  /** Candles before `toTsSec`; CryptoCompare returns `limit + 1`. 1 to 2000, default 2000. */
  limit?: number;
  fetch?: FetchFn;
  signal?: AbortSignal;
  requestTimeoutMs?: number;
  /** Whose timer the request timeout runs on (real waiting on I/O: production's systemClock). */
  clock?: Clock;
}

/** One histominute call, no retries: the candles, ascending, or an AppError saying what failed. */
export async function fetchMinuteHistory(request: MinuteHistoryRequest): Promise<CcMinuteCandle[]> {
  const limit = request.limit ?? HISTOMINUTE_MAX_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > HISTOMINUTE_MAX_LIMIT) {
    throw invalidArgument(`histominute limit must be 1 to ${HISTOMINUTE_MAX_LIMIT}, not ${limit}`);
  }
  const { base, quote } = splitSymbol(request.symbol);
  const restUrl = (request.restUrl ?? DEFAULT_REST_URL).replace(/\/+$/, '');
  const url = new URL(`${restUrl}/data/v2/histominute`);
  url.searchParams.set('fsym', base);
  url.searchParams.set('tsym', quote);
  url.searchParams.set('limit', String(limit));
  url.searchParams.set('toTs', String(request.toTsSec));
  url.searchParams.set('e', request.exchange ?? DEFAULT_EXCHANGE);

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
    return parseHistominuteResponse(response.status, text);
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (request.signal?.aborted) {
      throw new AppError('CANCELLED', 'histominute request aborted', { cause: err });
    }
    if (controller.signal.aborted) {
      throw new AppError('TIMEOUT', `histominute gave no answer in ${timeoutMs} ms`, {
        cause: err,
      });
    }
    throw new AppError('UNAVAILABLE', `histominute request failed: ${String(err)}`, { cause: err });
  } finally {
    clock.clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
  }
}

function isEmptyCandle(c: CcMinuteCandle): boolean {
  return (
    c.open === 0 &&
    c.high === 0 &&
    c.low === 0 &&
    c.close === 0 &&
    c.volumefrom === 0 &&
    c.volumeto === 0
  );
}

export interface MinuteRangeRequest extends Omit<MinuteHistoryRequest, 'toTsSec' | 'limit'> {
  fromMs: EpochMs;
  toMs: EpochMs;
  /** Candles asked per call; default (and most) 2000. */
  pageLimit?: number;
  retry?: Omit<RetryOptions, 'signal'>;
}

/**
 * The whole minutes inside [fromMs, toMs), ascending: a minute that starts before `fromMs` or
 * ends after `toMs` is left out (it is partly outside, or still forming). Pages backwards from
 * the newest minute, each page retried on its own; stops at `fromMs` or at the first all-zero
 * candle (before the market's listing there is nothing older).
 */
export async function fetchMinuteCandles(request: MinuteRangeRequest): Promise<CcMinuteCandle[]> {
  const { fromMs, toMs, pageLimit = HISTOMINUTE_MAX_LIMIT, retry = {}, ...call } = request;
  const firstSec = (Math.ceil(fromMs / MINUTE_MS) * MINUTE_MS) / SECOND_MS;
  const endSec = (Math.floor(toMs / MINUTE_MS) * MINUTE_MS) / SECOND_MS;
  const pages: CcMinuteCandle[][] = [];
  let newestSec = endSec - SECONDS_PER_MINUTE;
  while (newestSec >= firstSec) {
    const toTsSec = newestSec;
    const limit = Math.min(pageLimit, Math.max(1, (toTsSec - firstSec) / SECONDS_PER_MINUTE));
    const page = await withRetries(
      'histominute',
      () => fetchMinuteHistory({ ...call, toTsSec, limit }),
      { ...retry, signal: call.signal, ...(call.clock ? { clock: call.clock } : {}) },
    );
    const wanted = page.filter((c) => c.time >= firstSec && c.time <= toTsSec);
    if (wanted.length === 0) break;
    const lastEmpty = wanted.findLastIndex(isEmptyCandle);
    if (lastEmpty >= 0) {
      pages.push(wanted.slice(lastEmpty + 1));
      break;
    }
    pages.push(wanted);
    newestSec = wanted[0]!.time - SECONDS_PER_MINUTE;
  }
  const byTime = new Map<number, CcMinuteCandle>();
  for (const page of pages) for (const c of page) byTime.set(c.time, c);
  return [...byTime.values()].sort((a, b) => a.time - b.time);
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
  candle: CcMinuteCandle,
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

/**
 * A finite source: the trades `candleToTrades` makes of every minute in [from, to), ascending,
 * one symbol after the other. Pages come newest first, so one symbol's candles are collected
 * before the first is yielded: a week of minutes is ~10,000 candles, a few MB, which is fine.
 */
export function createCryptoCompareHistorySource(
  options: CryptoCompareHistoryOptions,
): TradeSource {
  if (options.apiKey === '') throw invalidArgument('CryptoCompare API key is empty');
  if (!(options.from < options.to)) throw invalidArgument('history range: from must be < to');
  const exchange = options.exchange ?? DEFAULT_EXCHANGE;
  const logger = options.logger.child({ component: 'cryptocompare-history' });

  async function* trades(run: SourceRunOptions): AsyncGenerator<Tick> {
    for (const symbol of options.symbols) {
      if (run.signal.aborted) return;
      let candles: CcMinuteCandle[];
      try {
        candles = await fetchMinuteCandles({
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
      for (const candle of candles) {
        for (const trade of candleToTrades(symbol, candle, exchange)) {
          if (run.signal.aborted) return;
          count++;
          yield trade;
        }
      }
      logger.info('history fetched', { symbol, exchange, minutes: candles.length, trades: count });
    }
  }

  return { kind: 'cryptocompare-history', trades };
}
