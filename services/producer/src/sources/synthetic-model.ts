/**
 * The synthetic market as a pure function: the trades of any (seed, symbol, time range) and their
 * 1-minute candles, the same whenever and in whatever pieces they are generated, so live trades,
 * a history replay and a backfill of the same time are the same rows (docs/SOURCES.md).
 *
 * - Trade times: time is cut into buckets (1 s, or longer at low rates so each holds about one
 *   trade); a bucket's trade count is Poisson, drawn from a hash of (seed, symbol, bucket), and its
 *   trades sit at hash-drawn milliseconds in it. A trade is known by (symbol, ms, k), k counting
 *   trades in the same ms; its id says so: `syn-<seed>-<SYMBOL>-<ms>-<k>`.
 * - Prices: a Brownian path of the log price, defined at every ms by a Lévy construction (midpoint
 *   displacement over dyadic intervals, Brownian bridges whose midpoints are hash-drawn normals;
 *   see e.g. Glasserman, Monte Carlo Methods in Financial Engineering, 3.1), inside blocks of 2³¹ ms
 *   (~25 days) whose end points follow a stationary AR(1) process around the symbol's centre
 *   price, so prices stay plausible over decades. Evaluating a time costs at most 31 midpoints,
 *   and consecutive times share most of them (a cursor keeps the last descent). Rare jumps are
 *   added as bridged steps within 2²¹ ms (~35 min) intervals, which keeps the path continuous at
 *   every interval's ends.
 * - Size, side: from a hash of the trade's (ms, k) and the path, so a trade's content depends
 *   on its id alone, not on the rate that placed it.
 */
import type { Bar, EpochMs, MarketSymbol, Tick, TradeSide } from '@candlestream/core';
import {
  AppError,
  DAY_MS,
  HOUR_MS,
  MAX_TICK_TS_MS,
  MIN_TICK_TS_MS,
  MINUTE_MS,
  SECOND_MS,
  mergeMinute,
  minuteBar,
  parseSymbol,
} from '@candlestream/core';

export interface SyntheticModelOptions {
  symbols: readonly MarketSymbol[];
  /** Same seed, same path and trades. */
  seed: number;
  /** Total across all symbols; each symbol gets an equal share (its trade times depend on it). */
  tradesPerSecond: number;
  /**
   * Centre prices by symbol (any spelling `parseSymbol` accepts): the level each path reverts to.
   * Default: BTC-USD 37000, ETH-USD 2000, others a stable 1–500 from the name.
   */
  initialPrices?: Partial<Record<string, number>>;
}

const YEAR_MS = 365.25 * DAY_MS;
/** Annualised volatility of the diffusion; crypto majors run at roughly 50–80%. */
export const ANNUAL_VOLATILITY = 0.6;
const VARIANCE_PER_MS = ANNUAL_VOLATILITY ** 2 / YEAR_MS;
/** Where the path's time starts (the first valid trade time, second-aligned). */
const ORIGIN_MS = MIN_TICK_TS_MS;
/** The bridge's blocks are 2^31 ms (~24.9 days); within one, 31 halvings reach 1 ms. */
const BLOCK_LEVELS = 31;
const BLOCK_MS = 2 ** BLOCK_LEVELS;
/**
 * Spread of the log price around the centre in the long run: 95% of the time within about
 * ×0.5–×2 of it. The block end points' AR(1) coefficient is chosen so that one block's step still
 * has the Brownian variance (VARIANCE_PER_MS × BLOCK_MS); reversion takes about a year.
 */
const STATIONARY_LOG_SD = 0.35;
const ANCHOR_RHO = 1 - (VARIANCE_PER_MS * BLOCK_MS) / (2 * STATIONARY_LOG_SD ** 2);
const ANCHOR_INNOVATION_SD = STATIONARY_LOG_SD * Math.sqrt(1 - ANCHOR_RHO ** 2);
/** Standard deviation of the midpoint of an interval of 2^(l+1) ms given its ends: σ²·L/4. */
const MIDPOINT_SD = Float64Array.from({ length: BLOCK_LEVELS }, (_, l) =>
  Math.sqrt((VARIANCE_PER_MS * 2 ** (l + 1)) / 4),
);
/** Rare jumps per symbol (news, liquidations) so charts show the odd long candle. */
const JUMPS_PER_HOUR = 0.5;
const JUMP_LOG_SIGMA = 0.003;
const JUMP_INTERVAL_MS = 2 ** 21;
const JUMP_PROBABILITY = 1 - Math.exp((-JUMPS_PER_HOUR * JUMP_INTERVAL_MS) / HOUR_MS);
/** Median trade value in quote currency; sizes are log-normal around it (heavy right tail). */
const MEDIAN_TRADE_NOTIONAL = 500;
const SIZE_LOG_SIGMA = 1.4;
const SIZE_SCALE = 1e8;
/**
 * Aggressors push the price their way: after a rise since the start of the trade's 2^SIDE_LEVEL ms
 * (128 ms) slot, a buy this often. The slot's start is on the path's descent already, so the side
 * costs no second evaluation.
 */
const SIDE_LEVEL = 7;
const SIDE_FOLLOWS_MOVE_PROBABILITY = 0.8;
const PRICE_SIGNIFICANT_DIGITS = 4;
const MAX_PRICE_DECIMALS = 12;
const DEFAULT_CENTRE_PRICES: Readonly<Record<string, number>> = {
  'BTC-USD': 37_000,
  'ETH-USD': 2_000,
};
/** Above this mean a bucket's Poisson count is drawn from its normal approximation. */
const POISSON_NORMAL_ABOVE = 40;
/** Low rates stretch buckets (powers of two seconds) up to this, about 24 days. */
const MAX_BUCKET_MS = 2 ** 21 * SECOND_MS;

// Hash salts: one stream of numbers per purpose.
const SALT_ANCHOR = 0x1b873593;
const SALT_NODE = 0x68e31da4;
const SALT_JUMP = 0x2f9b4c1d;
const SALT_COUNT = 0x5bd1e995;
const SALT_OFFSET = 0x3c6ef372;
const SALT_TRADE = 0x7f4a7c15;
const TWO_POW_32 = 4_294_967_296;

/** lowbias32 (Chris Wellons' hash-prospector): a fast, well-mixed 32-bit integer hash. */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function hash3(key: number, a: number, b: number, c: number): number {
  return mix(mix(mix(key ^ a) ^ b) ^ c);
}

/** (0, 1), never an end, so a log is finite. */
function unit(h: number): number {
  return (h + 0.5) / TWO_POW_32;
}

// Acklam's rational approximation of the normal quantile (relative error < 1.2e-9): no
// transcendental call for the central 95% of draws, which is most of the generator's work.
const A = [
  -39.69683028665376, 220.9460984245205, -275.928510446969, 138.357751867269, -30.66479806614716,
  2.506628274631,
] as const;
const B = [
  -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
] as const;
const C = [
  -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
  4.374664141464968, 2.938163982698783,
] as const;
const D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416] as const;
const P_LOW = 0.02425;

/** A standard normal from one hash, by inversion of its uniform. */
function normal(h: number): number {
  const p = unit(h);
  if (p < P_LOW || p > 1 - P_LOW) {
    const q = Math.sqrt(-2 * Math.log(p < P_LOW ? p : 1 - p));
    const x =
      (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) /
      ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1);
    return p < P_LOW ? x : -x;
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q) /
    (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1)
  );
}

/** FNV-1a of a string. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** A stable centre price in 1–500 for symbols without a default. */
export function hashedInitialPrice(symbol: string): number {
  return 1 + (fnv1a(symbol) % 49_901) / 100;
}

/** Cents above 1, four significant digits below (0.0001234), as venues quote small coins. */
export function roundPrice(price: number): number {
  const decimals = Math.min(
    MAX_PRICE_DECIMALS,
    Math.max(2, PRICE_SIGNIFICANT_DIGITS - 1 - Math.floor(Math.log10(price))),
  );
  const scale = 10 ** decimals;
  return Math.round(price * scale) / scale;
}

function invalid(message: string): AppError {
  return new AppError('INVALID_ARGUMENT', `synthetic source: ${message}`, { retriable: false });
}

/**
 * One symbol's log-price path, evaluated at integer ms. Stateful only as a cache: the last
 * descent is kept, so nearby times cost a few midpoints; any order of calls gives the same values.
 */
class PricePath {
  readonly #key: number;
  readonly #logCentre: number;
  readonly #anchors: number[] = [];
  readonly #lo = new Float64Array(BLOCK_LEVELS);
  readonly #hi = new Float64Array(BLOCK_LEVELS);
  #block = -1;
  #offset = -1;
  #value = 0;
  #jumpInterval = -1;
  #jumpAt = 0;
  #jumpSize = 0;

  constructor(key: number, centre: number) {
    this.#key = key;
    this.#logCentre = Math.log(centre);
  }

  /** The path's price at `ts` (unrounded). */
  price(ts: EpochMs): number {
    const rel = ts - ORIGIN_MS;
    return Math.exp(this.#logCentre + this.#bridge(rel) + this.#jump(rel));
  }

  /**
   * How the diffusion moved from the start of the last evaluated time's 2^level ms slot to that
   * time: > 0 up, < 0 down, 0 at the slot's start.
   */
  moveInSlot(level: number): number {
    return this.#value - this.#lo[level - 1]!;
  }

  #anchor(j: number): number {
    const anchors = this.#anchors;
    while (anchors.length <= j) {
      const n = anchors.length;
      const z = normal(hash3(this.#key, SALT_ANCHOR, n, 0));
      anchors.push(
        n === 0 ? STATIONARY_LOG_SD * z : ANCHOR_RHO * anchors[n - 1]! + ANCHOR_INNOVATION_SD * z,
      );
    }
    return anchors[j]!;
  }

  #bridge(rel: number): number {
    const block = Math.floor(rel / BLOCK_MS);
    const offset = rel - block * BLOCK_MS;
    let level: number;
    if (block !== this.#block) {
      this.#block = block;
      level = BLOCK_LEVELS - 1;
      this.#lo[level] = this.#anchor(block);
      this.#hi[level] = this.#anchor(block + 1);
    } else if (offset === this.#offset) {
      return this.#value;
    } else {
      // Levels above the highest differing bit split the same intervals as last time.
      level = 31 - Math.clz32(offset ^ this.#offset);
    }
    let lo = this.#lo[level]!;
    let hi = this.#hi[level]!;
    const nodeKey = mix(this.#key ^ SALT_NODE) ^ block;
    for (; level >= 0; level--) {
      this.#lo[level] = lo;
      this.#hi[level] = hi;
      const mid =
        (lo + hi) / 2 +
        MIDPOINT_SD[level]! * normal(mix(mix(nodeKey ^ (offset >>> (level + 1))) ^ level));
      if ((offset >>> level) & 1) lo = mid;
      else hi = mid;
    }
    this.#offset = offset;
    this.#value = lo;
    return lo;
  }

  /** A step of size J at τ, bridged back to 0 at the interval's ends: J·(1[t ≥ τ] − (t − a)/L). */
  #jump(rel: number): number {
    const interval = Math.floor(rel / JUMP_INTERVAL_MS);
    if (interval !== this.#jumpInterval) {
      this.#jumpInterval = interval;
      const h = hash3(this.#key, SALT_JUMP, interval >>> 0, 0);
      this.#jumpSize = unit(h) < JUMP_PROBABILITY ? normal(mix(h ^ 1)) * JUMP_LOG_SIGMA : 0;
      this.#jumpAt = Math.floor(unit(mix(h ^ 2)) * JUMP_INTERVAL_MS);
    }
    if (this.#jumpSize === 0) return 0;
    const within = rel - interval * JUMP_INTERVAL_MS;
    return this.#jumpSize * ((within >= this.#jumpAt ? 1 : 0) - within / JUMP_INTERVAL_MS);
  }
}

/** Poisson(mean) by inversion of `h`'s uniform; a normal approximation for large means. */
function poisson(mean: number, h: number): number {
  if (mean > POISSON_NORMAL_ABOVE) {
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * normal(h)));
  }
  const u = unit(h);
  let p = Math.exp(-mean);
  let cdf = p;
  let k = 0;
  while (u > cdf && p > 0) {
    k++;
    p *= mean / k;
    cdf += p;
  }
  return k;
}

/** One symbol's generator: its trades bucket by bucket and its path. */
class SymbolModel {
  readonly symbol: MarketSymbol;
  readonly #seed: number;
  readonly #key: number;
  readonly #bucketMs: number;
  readonly #meanPerBucket: number;
  readonly #path: PricePath;
  #offsets = new Float64Array(16);

  constructor(seed: number, symbol: MarketSymbol, centre: number, perSymbolRate: number) {
    this.symbol = symbol;
    this.#seed = seed;
    this.#key = mix(mix(seed >>> 0) ^ fnv1a(symbol));
    this.#bucketMs = bucketMsFor(perSymbolRate);
    this.#meanPerBucket = (perSymbolRate * this.#bucketMs) / SECOND_MS;
    this.#path = new PricePath(this.#key, centre);
  }

  get bucketMs(): number {
    return this.#bucketMs;
  }

  bucketOf(ts: EpochMs): number {
    return Math.floor((ts - ORIGIN_MS) / this.#bucketMs);
  }

  bucketStart(bucket: number): EpochMs {
    return ORIGIN_MS + bucket * this.#bucketMs;
  }

  price(ts: EpochMs): number {
    return this.#path.price(ts);
  }

  /** The bucket's trades in (ts, id) order, appended to `out`. */
  bucketTrades(bucket: number, out: Tick[]): void {
    const count = poisson(this.#meanPerBucket, hash3(this.#key, SALT_COUNT, bucket >>> 0, 0));
    if (count === 0) return;
    if (this.#offsets.length < count) this.#offsets = new Float64Array(count * 2);
    const offsets = this.#offsets.subarray(0, count);
    const offsetKey = mix(this.#key ^ SALT_OFFSET) ^ bucket;
    for (let i = 0; i < count; i++) {
      offsets[i] = Math.floor(unit(mix(mix(offsetKey) ^ i)) * this.#bucketMs);
    }
    offsets.sort();
    const start = this.bucketStart(bucket);
    let k = 0;
    for (let i = 0; i < count; i++) {
      k = i > 0 && offsets[i] === offsets[i - 1] ? k + 1 : 0;
      out.push(this.#trade(start + offsets[i]!, k));
    }
  }

  #trade(ts: EpochMs, k: number): Tick {
    const rel = ts - ORIGIN_MS;
    const h = hash3(this.#key, SALT_TRADE, rel >>> 0, Math.floor(rel / TWO_POW_32) ^ (k << 16));
    const price = roundPrice(this.#path.price(ts));
    const move = this.#path.moveInSlot(SIDE_LEVEL);
    const up = move === 0 ? (mix(h ^ 3) & 1) === 1 : move > 0;
    const follows = unit(mix(h ^ 4)) < SIDE_FOLLOWS_MOVE_PROBABILITY;
    const side: TradeSide = up === follows ? 'buy' : 'sell';
    const rawSize = (MEDIAN_TRADE_NOTIONAL / price) * Math.exp(normal(h) * SIZE_LOG_SIGMA);
    const size = Math.max(1 / SIZE_SCALE, Math.round(rawSize * SIZE_SCALE) / SIZE_SCALE);
    const id = `syn-${this.#seed}-${this.symbol}-${ts}-${k}`;
    return { v: 1, symbol: this.symbol, ts, price, size, side, id, source: 'synthetic' };
  }
}

/** 1 s, or the power of two seconds that holds about one trade at a lower rate. */
function bucketMsFor(perSymbolRate: number): number {
  if (perSymbolRate >= 1) return SECOND_MS;
  const seconds = 2 ** Math.ceil(Math.log2(1 / perSymbolRate));
  return Math.min(MAX_BUCKET_MS, seconds * SECOND_MS);
}

/** The model's symbols (deduplicated) and centre prices, validated. */
function resolve(options: SyntheticModelOptions): {
  symbols: MarketSymbol[];
  centres: Map<MarketSymbol, number>;
} {
  const symbols = [...new Set(options.symbols)];
  if (symbols.length === 0) throw invalid('symbols is empty');
  if (!Number.isInteger(options.seed)) throw invalid(`seed must be an integer`);
  if (!Number.isFinite(options.tradesPerSecond) || options.tradesPerSecond <= 0) {
    throw invalid(`tradesPerSecond must be a positive number, got ${options.tradesPerSecond}`);
  }
  const given = new Map<MarketSymbol, number>();
  for (const [key, price] of Object.entries(options.initialPrices ?? {})) {
    if (price === undefined) continue;
    if (!Number.isFinite(price) || price <= 0) {
      throw invalid(`initial price of ${key} must be a positive number, got ${price}`);
    }
    const symbol = parseSymbol(key);
    // A misread key (`shibusd` is SHI-BUSD) would otherwise be silently ignored.
    if (!symbols.includes(symbol)) {
      throw invalid(`initial price given for ${symbol}, which is not among the symbols`);
    }
    given.set(symbol, price);
  }
  const centres = new Map(
    symbols.map((s) => [s, given.get(s) ?? DEFAULT_CENTRE_PRICES[s] ?? hashedInitialPrice(s)]),
  );
  return { symbols, centres };
}

/** The earliest and latest times the model generates (valid trade times). */
function clampRange(from: EpochMs, to: EpochMs): { from: EpochMs; to: EpochMs } {
  return { from: Math.max(from, ORIGIN_MS), to: Math.min(to, MAX_TICK_TS_MS) };
}

/**
 * All symbols' trades from a time on, in time order (one ms: symbols in configuration order),
 * bucket by bucket. Pull with `peek`/`next`; a bucket is generated only when reached.
 */
export interface SyntheticTradeStream {
  /** The next trade, or undefined past the last valid trade time. */
  peek(): Tick | undefined;
  next(): Tick | undefined;
  /** Drops trades before `ts` (a reader too far behind skips ahead). */
  skipTo(ts: EpochMs): void;
}

class TradeStream implements SyntheticTradeStream {
  readonly #models: SymbolModel[];
  #bucket: number;
  #pending: Tick[] = [];
  #index = 0;
  #from: EpochMs;

  constructor(models: SymbolModel[], from: EpochMs) {
    this.#models = models;
    this.#from = Math.max(from, ORIGIN_MS);
    this.#bucket = models[0]!.bucketOf(this.#from);
  }

  /** The next trade, or undefined past the last valid trade time. */
  peek(): Tick | undefined {
    while (this.#index >= this.#pending.length) {
      const model = this.#models[0]!;
      if (model.bucketStart(this.#bucket) >= MAX_TICK_TS_MS) return undefined;
      const out: Tick[] = [];
      for (const m of this.#models) m.bucketTrades(this.#bucket, out);
      // Stable sort: within one ms, configuration order, then k.
      if (this.#models.length > 1) out.sort((a, b) => a.ts - b.ts);
      const from = this.#from;
      this.#pending = out.length > 0 && out[0]!.ts < from ? out.filter((t) => t.ts >= from) : out;
      while (this.#pending.length > 0 && this.#pending.at(-1)!.ts >= MAX_TICK_TS_MS) {
        this.#pending.pop();
      }
      this.#index = 0;
      this.#bucket++;
    }
    return this.#pending[this.#index];
  }

  next(): Tick | undefined {
    const tick = this.peek();
    if (tick !== undefined) this.#index++;
    return tick;
  }

  /** Drops trades before `ts` (a reader too far behind skips ahead). */
  skipTo(ts: EpochMs): void {
    if (ts <= this.#from) return;
    const bucket = this.#models[0]!.bucketOf(ts);
    if (bucket >= this.#bucket) {
      this.#pending = [];
      this.#index = 0;
      this.#bucket = bucket;
    }
    this.#from = ts;
    while (this.#index < this.#pending.length && this.#pending[this.#index]!.ts < ts) this.#index++;
  }
}

/** The deterministic synthetic market of some symbols at a rate, for a seed. */
export interface SyntheticModel {
  readonly symbols: readonly MarketSymbol[];
  /** All symbols' trades from `from` on, in time order. */
  stream(from: EpochMs): SyntheticTradeStream;
  /** One symbol's trades in [from, to), in (ts, id) order. */
  trades(symbol: MarketSymbol, from: EpochMs, to: EpochMs): Generator<Tick>;
  /** One symbol's 1-minute candles of [from, to) (minute-aligned): exactly its trades', per minute. */
  candles(symbol: MarketSymbol, from: EpochMs, to: EpochMs): Generator<Bar>;
  /** The path's price (unrounded) of a symbol at an instant: what trades at that ms are quoted at. */
  price(symbol: MarketSymbol, ts: EpochMs): number;
}

export function createSyntheticModel(options: SyntheticModelOptions): SyntheticModel {
  const { symbols, centres } = resolve(options);
  const rate = options.tradesPerSecond / symbols.length;
  // A symbol outside the configuration (a backfill of another symbol) gets the same share.
  const modelOf = (symbol: MarketSymbol): SymbolModel =>
    new SymbolModel(
      options.seed,
      symbol,
      centres.get(symbol) ?? DEFAULT_CENTRE_PRICES[symbol] ?? hashedInitialPrice(symbol),
      rate,
    );
  function* trades(symbol: MarketSymbol, fromMs: EpochMs, toMs: EpochMs): Generator<Tick> {
    const { from, to } = clampRange(fromMs, toMs);
    if (to <= from) return;
    const model = modelOf(symbol);
    const out: Tick[] = [];
    for (let b = model.bucketOf(from); model.bucketStart(b) < to; b++) {
      out.length = 0;
      model.bucketTrades(b, out);
      for (const t of out) if (t.ts >= from && t.ts < to) yield t;
    }
  }
  function* candles(symbol: MarketSymbol, from: EpochMs, to: EpochMs): Generator<Bar> {
    if (from % MINUTE_MS !== 0 || to % MINUTE_MS !== 0) {
      throw invalid(`candle ranges must be minute-aligned, got [${from}, ${to})`);
    }
    let minute = -1;
    let batch: Tick[] = [];
    const close = (): Bar | undefined => {
      const state = mergeMinute(undefined, batch);
      batch = [];
      return state && minuteBar(minute, state);
    };
    for (const t of trades(symbol, from, to)) {
      const m = t.ts - (t.ts % MINUTE_MS);
      if (m !== minute) {
        const bar = minute >= 0 ? close() : undefined;
        if (bar) yield bar;
        minute = m;
      }
      batch.push(t);
    }
    const bar = minute >= 0 ? close() : undefined;
    if (bar) yield bar;
  }
  const paths = new Map<MarketSymbol, SymbolModel>();
  return {
    symbols,
    stream: (from) => new TradeStream(symbols.map(modelOf), from),
    trades,
    candles,
    price: (symbol, ts) => {
      let model = paths.get(symbol);
      if (!model) paths.set(symbol, (model = modelOf(symbol)));
      return model.price(ts);
    },
  };
}

/** The synthetic 1-minute candles of `symbol` over [from, to) (minute-aligned), for backfills. */
export function syntheticCandles(
  options: SyntheticModelOptions,
  symbol: MarketSymbol,
  range: { from: EpochMs; to: EpochMs },
): Bar[] {
  return [...createSyntheticModel(options).candles(symbol, range.from, range.to)];
}
