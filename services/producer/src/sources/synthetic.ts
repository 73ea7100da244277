import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Clock, EpochMs, MarketSymbol, Tick, TradeSide } from '@candlestream/core';
import {
  AppError,
  DAY_MS,
  MAX_TICK_TS_MS,
  MIN_TICK_TS_MS,
  SECOND_MS,
  parseSymbol,
  sleep,
  systemClock,
  seededRandom,
} from '@candlestream/core';
import type { SourceRunOptions, TradeSource } from './source.js';

export interface SyntheticSourceOptions {
  symbols: readonly MarketSymbol[];
  /** Same seed, same trades (prices, sizes, sides, symbols, event-time gaps). */
  seed: number;
  /** Total across all symbols; each symbol gets an equal share on average. */
  tradesPerSecond: number;
  /**
   * History mode: trade times start here and advance in event time, emitted as fast as the reader
   * pulls; without a `limit`, until they reach the clock's now, then paced live from there on.
   * Absent: live mode, `ts` is the clock at emission and emission is paced to the rate.
   */
  startTs?: EpochMs;
  /** End after this many trades in total. Default: never. */
  limit?: number;
  clock?: Clock;
  /**
   * Starting prices by symbol (any spelling `parseSymbol` accepts). In live mode a run's
   * `resumePrices` (the newest published ones) take precedence.
   */
  initialPrices?: Partial<Record<string, number>>;
}

const YEAR_MS = 365.25 * DAY_MS;
/** Annualised volatility of the diffusion; crypto majors run at roughly 50–80%. */
const ANNUAL_VOLATILITY = 0.6;
/** Rare jumps per symbol (news, liquidations) so charts show the odd long candle. */
const JUMPS_PER_HOUR = 0.5;
const JUMP_LOG_SIGMA = 0.003;
/** Median trade value in quote currency; sizes are log-normal around it (heavy right tail). */
const MEDIAN_TRADE_NOTIONAL = 500;
const SIZE_LOG_SIGMA = 1.4;
const SIZE_DECIMALS = 8;
/** Aggressors push the price their way: an up-tick is a buy this often, a down-tick a sell. */
const SIDE_FOLLOWS_MOVE_PROBABILITY = 0.7;
const MIN_PRICE = 1e-9;
const PRICE_SIGNIFICANT_DIGITS = 4;
const MAX_PRICE_DECIMALS = 12;
const DEFAULT_INITIAL_PRICES: Readonly<Record<string, number>> = {
  'BTC-USD': 37_000,
  'ETH-USD': 2_000,
};
/** Live pacing: wake at most this often and at least this rarely, emitting every trade due. */
const MIN_BURST_MS = 20;
const MAX_BURST_MS = 100;
/** A reader (or a suspended laptop) this far behind pauses the schedule instead of flooding. */
const MAX_LAG_MS = 5_000;
/** History mode lets timers (an abort) run this often, even when the reader never awaits I/O. */
const HISTORY_TRADES_PER_TURN = 10_000;

/** Box-Muller; `1 - random()` is in (0, 1], so the log is finite. */
function standardNormal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** FNV-1a: a stable starting price in 1–500 for symbols without a default. */
function hashedInitialPrice(symbol: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < symbol.length; i++) hash = Math.imul(hash ^ symbol.charCodeAt(i), 0x01000193);
  return 1 + ((hash >>> 0) % 49_901) / 100;
}

/** Cents above 1, four significant digits below (0.0001234), as venues quote small coins. */
function roundPrice(price: number): number {
  const decimals = Math.min(
    MAX_PRICE_DECIMALS,
    Math.max(2, PRICE_SIGNIFICANT_DIGITS - 1 - Math.floor(Math.log10(price))),
  );
  return Number(price.toFixed(decimals));
}

interface ModelTrade {
  symbol: MarketSymbol;
  /** Event time since the start, ms (fractional). */
  offsetMs: number;
  price: number;
  size: number;
  side: TradeSide;
}

/**
 * One merged Poisson stream at the total rate, each trade on a uniformly chosen symbol (so each
 * symbol is Poisson too), each symbol a geometric random walk whose variance grows with its gap.
 */
function createModel(options: SyntheticSourceOptions, prices: Map<MarketSymbol, number>) {
  const random = seededRandom(options.seed);
  const states = options.symbols.map((symbol) => ({
    symbol,
    price: prices.get(symbol)!,
    lastOffsetMs: 0,
  }));
  const meanGapMs = SECOND_MS / options.tradesPerSecond;
  const jumpsPerMs = JUMPS_PER_HOUR / (60 * 60 * SECOND_MS);
  let offsetMs = 0;
  return (): ModelTrade => {
    offsetMs += -Math.log(1 - random()) * meanGapMs;
    const state = states[Math.floor(random() * states.length)]!;
    const gapMs = offsetMs - state.lastOffsetMs;
    state.lastOffsetMs = offsetMs;
    const variance = (ANNUAL_VOLATILITY ** 2 * gapMs) / YEAR_MS;
    // The -variance/2 drift keeps the expected price flat (a martingale).
    let logReturn = standardNormal(random) * Math.sqrt(variance) - variance / 2;
    if (random() < 1 - Math.exp(-jumpsPerMs * gapMs)) {
      logReturn += standardNormal(random) * JUMP_LOG_SIGMA;
    }
    const before = roundPrice(state.price);
    state.price = Math.max(MIN_PRICE, state.price * Math.exp(logReturn));
    const price = roundPrice(state.price);
    const rawSize =
      (MEDIAN_TRADE_NOTIONAL / price) * Math.exp(standardNormal(random) * SIZE_LOG_SIGMA);
    const size = Math.max(10 ** -SIZE_DECIMALS, Number(rawSize.toFixed(SIZE_DECIMALS)));
    const follows = random() < SIDE_FOLLOWS_MOVE_PROBABILITY;
    const up = price === before ? random() < 0.5 : price > before;
    return { symbol: state.symbol, offsetMs, price, size, side: up === follows ? 'buy' : 'sell' };
  };
}

function invalid(message: string): AppError {
  return new AppError('INVALID_ARGUMENT', `synthetic source: ${message}`, { retriable: false });
}

function resolveInitialPrices(options: SyntheticSourceOptions): Map<MarketSymbol, number> {
  const given = new Map<MarketSymbol, number>();
  for (const [key, price] of Object.entries(options.initialPrices ?? {})) {
    if (price === undefined) continue;
    if (!Number.isFinite(price) || price <= 0) {
      throw invalid(`initial price of ${key} must be a positive number, got ${price}`);
    }
    const symbol = parseSymbol(key);
    // A misread key (`shibusd` is SHI-BUSD) would otherwise be silently ignored.
    if (!options.symbols.includes(symbol)) {
      throw invalid(`initial price given for ${symbol}, which is not among the symbols`);
    }
    given.set(symbol, price);
  }
  return new Map(
    options.symbols.map((s) => [
      s,
      given.get(s) ?? DEFAULT_INITIAL_PRICES[s] ?? hashedInitialPrice(s),
    ]),
  );
}

function validate(options: SyntheticSourceOptions): void {
  if (options.symbols.length === 0) throw invalid('symbols is empty');
  if (!Number.isFinite(options.seed)) throw invalid(`seed must be a finite number`);
  if (!Number.isFinite(options.tradesPerSecond) || options.tradesPerSecond <= 0) {
    throw invalid(`tradesPerSecond must be a positive number, got ${options.tradesPerSecond}`);
  }
  const { startTs, limit } = options;
  if (
    startTs !== undefined &&
    !(Number.isInteger(startTs) && startTs >= MIN_TICK_TS_MS && startTs < MAX_TICK_TS_MS)
  ) {
    throw invalid(`startTs must be epoch ms between 2009 and 2100, got ${startTs}`);
  }
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw invalid(`limit must be a non-negative integer, got ${limit}`);
  }
}

function toTick(trade: ModelTrade, ts: EpochMs, id: string): Tick {
  const { symbol, price, size, side } = trade;
  return { v: 1, symbol, ts, price, size, side, id, source: 'synthetic' };
}

async function* history(
  options: SyntheticSourceOptions,
  startTs: EpochMs,
  prices: Map<MarketSymbol, number>,
  clock: Clock,
  { signal, onStatus }: SourceRunOptions,
): AsyncGenerator<Tick> {
  onStatus?.({ state: 'connected' });
  const next = createModel(options, prices);
  // The start is in the id so two ranges from one seed do not collide downstream.
  const idPrefix = `syn-${options.seed}-${startTs.toString(36)}-`;
  const limit = options.limit ?? Infinity;
  // Without a limit, history runs up to now and then goes on live, at the rate, from the same walk.
  // With one it is a fixed batch (tests, benchmarks), emitted as fast as the reader pulls.
  const catchUpToNow = options.limit === undefined;
  let lastTs = -Infinity;
  for (let n = 0; n < limit && !signal.aborted; n++) {
    if (n > 0 && n % HISTORY_TRADES_PER_TURN === 0) {
      await yieldToEventLoop();
      if (signal.aborted) return;
    }
    const trade = next();
    const ts = startTs + Math.floor(trade.offsetMs);
    if (ts >= MAX_TICK_TS_MS) return;
    if (catchUpToNow && ts > clock.now()) {
      // Caught up: wait for the trade's time, as the live mode does (sleep rejects on abort only).
      while (!signal.aborted && ts > clock.now()) {
        const waitMs = ts - clock.now();
        await sleep(Math.min(MAX_BURST_MS, Math.max(MIN_BURST_MS, waitMs)), signal, clock).catch(
          () => {},
        );
      }
      if (signal.aborted) return;
    }
    lastTs = Math.max(lastTs, ts);
    yield toTick(trade, lastTs, `${idPrefix}${n}`);
  }
}

/**
 * The starting prices with each symbol's published price in place of its default, so a live walk
 * goes on where the last run (or any other source on the topic) left it. Other symbols are
 * ignored: the topic holds whatever else was published to it.
 */
function resumedPrices(
  prices: ReadonlyMap<MarketSymbol, number>,
  resume: ReadonlyMap<MarketSymbol, number> | undefined,
): Map<MarketSymbol, number> {
  const start = new Map(prices);
  for (const [symbol, price] of resume ?? []) {
    if (start.has(symbol) && Number.isFinite(price) && price > 0) start.set(symbol, price);
  }
  return start;
}

async function* live(
  options: SyntheticSourceOptions,
  clock: Clock,
  prices: Map<MarketSymbol, number>,
  { signal, onStatus, resumePrices }: SourceRunOptions,
): AsyncGenerator<Tick> {
  onStatus?.({ state: 'connected' });
  const next = createModel(options, resumedPrices(prices, resumePrices));
  // Wall time that event-time offset 0 maps to; also makes ids unique across restarts.
  let baseMs = clock.now();
  const idPrefix = `syn-${options.seed}-${baseMs.toString(36)}-`;
  const limit = options.limit ?? Infinity;
  let trade = next();
  let emitted = 0;
  let lastTs = -Infinity;
  while (emitted < limit && !signal.aborted) {
    const now = clock.now();
    // Due times come from the schedule, not from counting sleeps, so pacing never drifts.
    if (now - (baseMs + trade.offsetMs) > MAX_LAG_MS) baseMs = now - trade.offsetMs;
    const waitMs = baseMs + trade.offsetMs - now;
    if (waitMs <= 0) {
      // A wall clock stepping back must not reorder a symbol's trades.
      lastTs = Math.max(lastTs, now);
      yield toTick(trade, lastTs, `${idPrefix}${emitted}`);
      emitted++;
      trade = next();
      continue;
    }
    // sleep rejects only on abort, which the loop condition then sees.
    await sleep(Math.min(MAX_BURST_MS, Math.max(MIN_BURST_MS, waitMs)), signal, clock).catch(
      () => {},
    );
  }
}

/** Plausible trades from a seeded model: the default source for demos, tests and benchmarks. */
export function createSyntheticSource(input: SyntheticSourceOptions): TradeSource {
  // A repeated symbol would get two interleaved price walks.
  const options = { ...input, symbols: [...new Set(input.symbols)] };
  validate(options);
  const prices = resolveInitialPrices(options);
  const clock = options.clock ?? systemClock;
  return {
    kind: 'synthetic',
    // History mode replays the seed's walk from its start, the same on every run.
    resumesPrices: options.startTs === undefined,
    trades(run: SourceRunOptions): AsyncIterable<Tick> {
      return options.startTs === undefined
        ? live(options, clock, prices, run)
        : history(options, options.startTs, prices, clock, run);
    },
  };
}
