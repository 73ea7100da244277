/**
 * Where the producer's backfills get their candles (docs/BACKFILLS.md): one small seam per
 * source, so the backfilling region does not care which one it runs on.
 */
import type { Bar, Clock, MarketSymbol, TimeRange, UnavailableRange } from '@candlestream/core';
import { MINUTE_MS, SECOND_MS } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { ProducerConfig } from '../config.js';
import { resolvedSource } from '../config.js';
import type { CcCandle } from './cryptocompare-rest.js';
import { fetchMinuteCandles, HISTO_MAX_LIMIT } from './cryptocompare-rest.js';
import type { SyntheticModel } from './synthetic-model.js';
import { createSyntheticModel } from './synthetic-model.js';
import { DEFAULT_SYNTHETIC_SEED } from './synthetic.js';

/** What one fetch of a range brought: its candles, ascending, and what the source could not give. */
export interface FetchedCandles {
  candles: Bar[];
  unavailable: UnavailableRange[];
}

export interface BackfillFetcher {
  /** For logs and /health: `synthetic`, `cryptocompare`. */
  readonly kind: string;
  /** Ranges are fetched in pieces of at most this many minutes (progress, heartbeats, memory). */
  readonly chunkMinutes: number;
  /**
   * The 1-minute candles of `range` (minute-aligned) for `symbol`. Rejects with an AppError;
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
  clock?: Clock;
}

function toBar(c: CcCandle): Bar {
  return {
    time: c.time * SECOND_MS,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volumefrom,
  };
}

/**
 * CryptoCompare's REST minute history (`fetchMinuteCandles`: paging and per-page retries are
 * its own). What it could not provide after its retries (beyond the ~7 days of minutes it keeps,
 * a pair the exchange does not list) is reported as unavailable, not as a failure.
 */
export function cryptoCompareFetcher(options: CryptoCompareFetcherOptions): BackfillFetcher {
  return {
    kind: 'cryptocompare',
    chunkMinutes: HISTO_MAX_LIMIT,
    fetch: async (symbol, range, signal) => {
      const { candles, unavailable } = await fetchMinuteCandles({
        apiKey: options.apiKey,
        symbol,
        fromMs: range.from,
        toMs: range.to,
        signal,
        ...(options.restUrl ? { restUrl: options.restUrl } : {}),
        ...(options.exchange ? { exchange: options.exchange } : {}),
        ...(options.clock ? { clock: options.clock } : {}),
        ...(options.logger ? { retry: { logger: options.logger } } : {}),
      });
      return {
        candles: candles.map(toBar),
        unavailable: unavailable.map((u) => ({
          from: u.fromMs,
          to: u.toMs,
          reason: u.error.message.slice(0, 500),
        })),
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
