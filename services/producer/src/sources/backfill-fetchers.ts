/**
 * Where the producer's backfills get their candles (docs/BACKFILLS.md): one small seam per
 * source, so the backfilling region does not care which one it runs on.
 */
import type {
  AppError,
  CandleSpan,
  Clock,
  MarketSymbol,
  SpanBar,
  TimeRange,
  UnavailableRange,
} from '@candlestream/core';
import {
  MINUTE_MS,
  SECOND_MS,
  ceilBucket,
  floorBucket,
  mergeRanges,
  subtractRanges,
  systemClock,
} from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { ProducerConfig } from '../config.js';
import { resolvedSource } from '../config.js';
import type { CcCandle, CcResolution, RetryOptions } from './cryptocompare-rest.js';
import { fetchCandles, HISTO_MAX_LIMIT } from './cryptocompare-rest.js';
import type { SyntheticModel } from './synthetic-model.js';
import { createSyntheticModel } from './synthetic-model.js';
import { DEFAULT_SYNTHETIC_SEED } from './synthetic.js';

/**
 * What one fetch of a range brought: its candles, ascending (1-minute ones, and hours or days
 * where the source keeps no minutes; a coarser candle may reach outside the range), and what the
 * source could not give in minutes (`stored` naming the coarser candles fetched instead).
 */
export interface FetchedCandles {
  candles: SpanBar[];
  unavailable: UnavailableRange[];
}

export interface BackfillFetcher {
  /** For logs and /health: `synthetic`, `cryptocompare`. */
  readonly kind: string;
  /** Ranges are fetched in pieces of at most this many minutes (progress, heartbeats, memory). */
  readonly chunkMinutes: number;
  /**
   * The 1-minute candles of `range` (minute-aligned) for `symbol`, or coarser ones where the
   * source has no minutes (see FetchedCandles). Rejects with an AppError;
   * `retriable` says whether trying the same range again may help.
   */
  fetch(symbol: MarketSymbol, range: TimeRange, signal: AbortSignal): Promise<FetchedCandles>;
}

/** A source that cannot backfill, and why: the job fails with this. */
export interface NoBackfill {
  readonly kind: string;
  readonly reason: string;
}

/**
 * About this many trades are generated per synthetic chunk: the generator runs on the event
 * loop, so a chunk is kept short (a few tens of ms) for the live stream beside it.
 */
const SYNTHETIC_TRADES_PER_CHUNK = 50_000;
const MAX_CHUNK_MINUTES = 24 * 60;

/** The synthetic market's own candles: exactly the aggregate of the trades the live stream emits. */
export function syntheticFetcher(model: SyntheticModel, tradesPerSecond: number): BackfillFetcher {
  const perSymbolPerMinute = (tradesPerSecond / model.symbols.length) * (MINUTE_MS / SECOND_MS);
  return {
    kind: 'synthetic',
    chunkMinutes: Math.max(
      1,
      Math.min(MAX_CHUNK_MINUTES, Math.floor(SYNTHETIC_TRADES_PER_CHUNK / perSymbolPerMinute)),
    ),
    fetch: (symbol, range) =>
      Promise.resolve({
        candles: [...model.candles(symbol, range.from, range.to)],
        unavailable: [],
      }),
  };
}

export interface CryptoCompareFetcherOptions {
  apiKey: string;
  restUrl?: string;
  exchange?: string;
  logger?: Logger;
  /** Request timeouts and backoffs run on it, and it says which candles are still forming. */
  clock?: Clock;
  /** Per-page retries (tries, backoff); default fetchCandles' own. */
  retry?: Omit<RetryOptions, 'signal' | 'logger' | 'clock'>;
  /** Bars asked per call; default (and most) HISTO_MAX_LIMIT. */
  pageLimit?: number;
}

/** The coarser candles stored where CryptoCompare has no minutes, and the reason reported. */
export const STORED_HOURS_REASON =
  'CryptoCompare keeps minutes for about 7 days; hourly candles stored instead';
export const STORED_DAYS_REASON =
  'CryptoCompare keeps neither minutes nor hours this old; daily candles stored instead';

/** An unavailable range's reason is at most this long (core's schema for it). */
export const MAX_REASON_CHARS = 500;

const SPAN_OF: Record<CcResolution, CandleSpan> = { minute: '1m', hour: '1h', day: '1d' };

function toBar(c: CcCandle, span: CandleSpan): SpanBar {
  return {
    time: c.time * SECOND_MS,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volumefrom,
    ...(span === '1m' ? {} : { span }),
  };
}

/**
 * The vendor's refusal of bars older than the history it keeps: asking again cannot help, so
 * coarser candles may stand in. A lasting rate limit or an outage is retriable and must not: the
 * minutes would then never be fetched later (a range with `stored` counts as answered).
 */
function isBeyondHistory(error: AppError): boolean {
  return !error.retriable && error.details?.['beyondHistory'] === true;
}

/** Each of `ranges` minus all of `covered`. */
function minus(ranges: readonly TimeRange[], covered: readonly TimeRange[]): TimeRange[] {
  return ranges.flatMap((r) => subtractRanges(r, covered));
}

interface Fallback {
  /** Ranges the coarser endpoints answered for, per span (their candles are in `candles`). */
  answered: Record<'1h' | '1d', TimeRange[]>;
  /** What nothing covered, with the refusals' messages, finest first. */
  missing: UnavailableRange[];
  candles: SpanBar[];
}

/**
 * CryptoCompare's REST history (`fetchCandles`: paging and per-page retries are its own). The
 * piece's minutes first; where histominute refuses them as beyond its ~7 days, the hours around
 * them from histohour (`[floorHour(from), ceilHour(to))`), and where histohour refuses those in
 * turn, the days from histoday. A coarser candle that would still be forming (it ends after now)
 * is not asked for. What it could not provide after its retries (a pair the exchange does not
 * list, a lasting rate limit) is reported as unavailable, not as a failure; the parts where
 * coarser candles stand in are reported with `stored`.
 *
 * The reports say what the backfilling region ends up storing: it writes candles in time order
 * and drops any that starts inside one already written, so at a seam the coarser candle wins
 * (the minutes after the minute history starts inside an hour fetched as an hour are not
 * stored), and a `stored` range reaches to the end of its last coarser candle.
 */
export function cryptoCompareFetcher(options: CryptoCompareFetcherOptions): BackfillFetcher {
  const clock = options.clock ?? systemClock;
  const fetchSpan = async (
    resolution: CcResolution,
    window: TimeRange,
    symbol: MarketSymbol,
    signal: AbortSignal,
  ) => {
    const { candles, unavailable } = await fetchCandles({
      apiKey: options.apiKey,
      symbol,
      resolution,
      fromMs: window.from,
      toMs: window.to,
      signal,
      ...(options.restUrl ? { restUrl: options.restUrl } : {}),
      ...(options.exchange ? { exchange: options.exchange } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.pageLimit ? { pageLimit: options.pageLimit } : {}),
      retry: { ...options.retry, ...(options.logger ? { logger: options.logger } : {}) },
    });
    return {
      candles: candles.map((c) => toBar(c, SPAN_OF[resolution])),
      unavailable: unavailable.map((u) => ({ from: u.fromMs, to: u.toMs, error: u.error })),
    };
  };

  /** `part` (refused by the finer endpoint with `reason`) from `resolution` on, coarser and coarser. */
  const fallBack = async (
    resolution: 'hour' | 'day',
    part: TimeRange,
    reason: string,
    symbol: MarketSymbol,
    signal: AbortSignal,
    into: Fallback,
  ): Promise<void> => {
    const span = SPAN_OF[resolution] as '1h' | '1d';
    // Only whole bars that have ended: one still forming would be stored as final.
    const window = {
      from: floorBucket(part.from, span),
      to: Math.min(ceilBucket(part.to, span), floorBucket(clock.now(), span)),
    };
    if (window.to <= window.from) {
      into.missing.push({ ...part, reason });
      return;
    }
    if (window.to < part.to) into.missing.push({ from: window.to, to: part.to, reason });
    const got = await fetchSpan(resolution, window, symbol, signal);
    into.candles.push(...got.candles);
    into.answered[span].push(...subtractRanges(window, got.unavailable));
    for (const refused of got.unavailable) {
      // Why the minutes are missing, then why the coarser candles are too.
      const why = `${reason}; ${refused.error.message}`.slice(0, MAX_REASON_CHARS);
      if (resolution === 'hour' && isBeyondHistory(refused.error)) {
        await fallBack('day', refused, why, symbol, signal, into);
      } else {
        into.missing.push({ from: refused.from, to: refused.to, reason: why });
      }
    }
  };

  return {
    kind: 'cryptocompare',
    chunkMinutes: HISTO_MAX_LIMIT,
    fetch: async (symbol, range, signal) => {
      const minutes = await fetchSpan('minute', range, symbol, signal);
      const candles = [...minutes.candles];
      const unavailable: UnavailableRange[] = [];
      for (const refused of minutes.unavailable) {
        const reason = refused.error.message.slice(0, MAX_REASON_CHARS);
        if (!isBeyondHistory(refused.error)) {
          unavailable.push({ from: refused.from, to: refused.to, reason });
          continue;
        }
        const fallback: Fallback = { answered: { '1h': [], '1d': [] }, missing: [], candles: [] };
        await fallBack('hour', refused, reason, symbol, signal, fallback);
        candles.push(...fallback.candles);
        // Nothing before the refused part is claimed (its minutes may be stored); a coarser
        // candle is claimed to its end, since the region drops the finer ones inside it.
        const fromPart = (r: TimeRange): TimeRange[] =>
          r.to > refused.from ? [{ from: Math.max(r.from, refused.from), to: r.to }] : [];
        const days = mergeRanges(fallback.answered['1d'].flatMap(fromPart));
        const hours = minus(mergeRanges(fallback.answered['1h'].flatMap(fromPart)), days);
        const none = fallback.missing.flatMap((m) =>
          minus(
            [{ from: Math.max(m.from, refused.from), to: Math.min(m.to, refused.to) }].filter(
              (r) => r.to > r.from,
            ),
            [...days, ...hours],
          ).map((r) => ({ ...r, reason: m.reason })),
        );
        unavailable.push(
          ...days.map((r) => ({ ...r, reason: STORED_DAYS_REASON, stored: '1d' as const })),
          ...hours.map((r) => ({ ...r, reason: STORED_HOURS_REASON, stored: '1h' as const })),
          ...none,
        );
      }
      return {
        candles: candles.sort((a, b) => a.time - b.time),
        unavailable: unavailable.sort((a, b) => a.from - b.from),
      };
    },
  };
}

/** The fetcher of the configured source, or why it has none. */
export function createBackfillFetcher(
  config: ProducerConfig,
  logger: Logger,
  clock: Clock,
): BackfillFetcher | NoBackfill {
  const source = resolvedSource(config);
  switch (source) {
    case 'synthetic':
      return syntheticFetcher(
        createSyntheticModel({
          symbols: config.symbols,
          seed: config.syntheticSeed ?? DEFAULT_SYNTHETIC_SEED,
          tradesPerSecond: config.syntheticRate,
        }),
        config.syntheticRate,
      );
    case 'cryptocompare':
    case 'cryptocompare-history':
      return cryptoCompareFetcher({
        apiKey: config.apiKey ?? '',
        logger: logger.child({ component: 'backfill' }),
        clock,
        ...(config.restUrl ? { restUrl: config.restUrl } : {}),
        ...(config.exchange ? { exchange: config.exchange } : {}),
      });
    case 'file':
      return {
        kind: 'file',
        reason: 'the producer reads a file (PRODUCER_SOURCE=file), which cannot fetch history',
      };
  }
}

export function canBackfill(f: BackfillFetcher | NoBackfill): f is BackfillFetcher {
  return 'fetch' in f;
}
