/**
 * Between the CryptoCompare socket and the trade queue: drops re-sent trades, notices minutes
 * missed while disconnected, fills them from REST minute history and keeps each symbol's trades
 * in time order while it does (live trades wait behind the gap being filled).
 */
import type { EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import { MINUTE_MS, toIso } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import { RecentIds } from './cryptocompare-protocol.js';
import type { TradeQueue } from './cryptocompare-queue.js';
import type { CandleRange } from './cryptocompare-rest.js';
import { candleToTrades } from './cryptocompare-rest.js';

export interface GapFillCounters {
  duplicates: number;
  dropped: number;
  gapFills: number;
  gapFillFailures: number;
  backfilledTrades: number;
}

export interface GapFillerOptions {
  symbols: readonly MarketSymbol[];
  /** Newest trade time already published per symbol: the first gap starts there. */
  resumeFrom: ReadonlyMap<MarketSymbol, EpochMs> | undefined;
  exchange: string;
  recentIdsPerSymbol: number;
  /** Live trades held per symbol while a gap is filled; past it the oldest go. */
  maxHeldTrades: number;
  /** A longer gap is filled for its newest part only. */
  maxGapFillMs: EpochMs;
  queue: TradeQueue;
  counters: GapFillCounters;
  logger: Logger;
  /**
   * The whole minutes inside [fromMs, toMs) that could be had, and the parts that could not;
   * rejects only when cancelled (or on a bug).
   */
  fetchCandles(symbol: MarketSymbol, fromMs: EpochMs, toMs: EpochMs): Promise<CandleRange>;
  onGapStart(fromMs: EpochMs, toMs: EpochMs): void;
  /** A gap fill has ended and what it held is queued; `filling` tells if others still run. */
  onFillEnd(): void;
  /** True once the run is stopping: a failed fill is then not an error. */
  stopping(): boolean;
}

interface GapJob {
  done: boolean;
  trades: Tick[];
}

interface SymbolState {
  symbol: MarketSymbol;
  recent: RecentIds;
  /** Newest trade time accepted (or published before a restart). */
  lastTs: EpochMs | undefined;
  /** Set by a (re)connect: the next new trade tells whether minutes were missed. */
  checkGap: boolean;
  /** While a gap fill runs: the gap, then the live trades held behind it. */
  held: ({ gap: GapJob } | { tick: Tick })[];
  heldLive: number;
}

const floorMinute = (ts: EpochMs): EpochMs => Math.floor(ts / MINUTE_MS) * MINUTE_MS;

export class GapFiller {
  readonly #o: GapFillerOptions;
  readonly #states = new Map<MarketSymbol, SymbolState>();
  readonly #jobs = new Set<Promise<void>>();

  constructor(options: GapFillerOptions) {
    this.#o = options;
    for (const symbol of options.symbols) {
      const resumeTs = options.resumeFrom?.get(symbol);
      this.#states.set(symbol, {
        symbol,
        // A re-sent trade older than the newest published one is a repeat.
        recent: new RecentIds(options.recentIdsPerSymbol, resumeTs),
        lastTs: resumeTs,
        checkGap: resumeTs !== undefined,
        held: [],
        heldLive: 0,
      });
    }
  }

  get filling(): boolean {
    return this.#jobs.size > 0;
  }

  /** After a disconnect: the first new trade of each symbol decides whether to fill a gap. */
  disconnected(): void {
    for (const state of this.#states.values()) state.checkGap = state.lastTs !== undefined;
  }

  /**
   * Takes one live trade: drops it as a repeat, queues it, or holds it behind a gap fill. The
   * first new trade after a reconnect marks the gap: the whole minutes strictly between the
   * last trade's minute and its own (CryptoCompare re-sends the latest trades on subscribe, so
   * when the first new one shares the last trade's minute, nothing was missed).
   */
  accept(tick: Tick): void {
    const state = this.#states.get(tick.symbol);
    if (!state) return;
    if (!state.recent.add(tick.id, tick.ts)) {
      this.#o.counters.duplicates++;
      return;
    }
    if (state.checkGap) {
      state.checkGap = false;
      if (state.lastTs !== undefined) {
        const fromMs = floorMinute(state.lastTs) + MINUTE_MS;
        const toMs = floorMinute(tick.ts);
        if (toMs > fromMs) this.#fill(state, Math.max(fromMs, toMs - this.#o.maxGapFillMs), toMs);
      }
    }
    state.lastTs = Math.max(state.lastTs ?? tick.ts, tick.ts);
    if (state.held.length === 0) {
      this.#o.queue.push(tick, 'live');
      return;
    }
    state.held.push({ tick });
    state.heldLive++;
    if (state.heldLive > this.#o.maxHeldTrades) {
      // The queue's policy: past the bound the oldest live trade goes.
      state.held.splice(
        state.held.findIndex((item) => 'tick' in item),
        1,
      );
      state.heldLive--;
      this.#o.counters.dropped++;
    }
  }

  /** Resolves when every gap fill has ended (they are cancelled through the fetch's signal). */
  async settled(): Promise<void> {
    await Promise.all([...this.#jobs]);
  }

  #fill(state: SymbolState, fromMs: EpochMs, toMs: EpochMs): void {
    const job: GapJob = { done: false, trades: [] };
    state.held.push({ gap: job });
    const { counters, logger, exchange } = this.#o;
    counters.gapFills++;
    const range = { symbol: state.symbol, from: toIso(fromMs), to: toIso(toMs) };
    logger.info('filling missed minutes from REST', range);
    this.#o.onGapStart(fromMs, toMs);
    const work = this.#o
      .fetchCandles(state.symbol, fromMs, toMs)
      .then(({ candles, unavailable }) => {
        // What was fetched is kept even when part of the gap could not be had.
        job.trades = candles
          .flatMap((c) => candleToTrades(state.symbol, c, exchange))
          .filter((t) => t.ts >= fromMs && t.ts < toMs);
        counters.backfilledTrades += job.trades.length;
        if (unavailable.length === 0) {
          logger.info('gap filled', {
            ...range,
            minutes: candles.length,
            trades: job.trades.length,
          });
          return;
        }
        if (this.#o.stopping()) return;
        counters.gapFillFailures++;
        logger.error('gap fill failed for part of the gap; those minutes stay missing', {
          ...range,
          minutes: candles.length,
          trades: job.trades.length,
          unavailable: unavailable.map((u) => ({
            from: toIso(u.fromMs),
            to: toIso(u.toMs),
            code: u.error.code,
            retriable: u.error.retriable,
            reason: u.error.message,
          })),
        });
      })
      .catch((err: unknown) => {
        if (this.#o.stopping()) return;
        // The live stream goes on; the gap stays for a later backfill to cover.
        counters.gapFillFailures++;
        logger.error('gap fill failed; those minutes stay missing', { ...range, err });
      })
      .finally(() => {
        job.done = true;
        this.#jobs.delete(work);
        this.#release(state);
        this.#o.onFillEnd();
      });
    this.#jobs.add(work);
  }

  /** Moves held items to the queue, in order, up to the first gap still being filled. */
  #release(state: SymbolState): void {
    let i = 0;
    for (; i < state.held.length; i++) {
      const item = state.held[i]!;
      if ('tick' in item) {
        this.#o.queue.push(item.tick, 'live');
        state.heldLive--;
      } else if (item.gap.done) {
        for (const t of item.gap.trades) this.#o.queue.push(t, 'backfill');
      } else {
        break;
      }
    }
    state.held.splice(0, i);
  }
}
