import type { Bar, BarUpdate } from './bars.js';
import { ExactSum } from './exact-sum.js';
import type { Interval } from './intervals.js';
import { floorBucket } from './intervals.js';
import type { MarketSymbol } from './symbols.js';
import type { Tick } from './ticks.js';
import { compareTrades } from './ticks.js';
import type { EpochMs } from './time.js';

type TradeKey = Pick<Tick, 'ts' | 'id'>;

/** A bar being built: OHLC chosen by the trade order, volume summed exactly. */
interface OpenBar {
  time: EpochMs;
  open: number;
  openKey: TradeKey;
  close: number;
  closeKey: TradeKey;
  high: number;
  low: number;
  volume: ExactSum;
  /** Trade ids seen in this bucket; dropped with the bar when it closes. */
  ids: Set<string>;
}

interface SymbolState {
  /** Open bars by bucket open time; usually one, more only with allowed lateness. */
  open: Map<EpochMs, OpenBar>;
  /** Every bucket before this one is closed: its trades are late. */
  closedBefore: EpochMs;
  /** Newest trade time seen (event time). */
  watermark: EpochMs;
}

export interface AggregatorOptions {
  interval: Interval;
  /**
   * How long after its end a bucket still accepts trades, in event time (newest trade seen) or
   * clock time (`advance`). 0, the default, closes a bar as soon as a trade of a later bucket
   * arrives; Infinity keeps every bar open until `flush` (batch aggregation).
   */
  allowedLatenessMs?: number;
}

export type AddStatus = 'applied' | 'duplicate' | 'late';

export interface AddResult {
  status: AddStatus;
  /** Bars closed by this trade's time (final, ascending), then the bar it changed (not final). */
  events: BarUpdate[];
}

/**
 * Incremental tick-to-bar aggregation for one interval and any number of symbols.
 *
 * - Open and close are the first and last trades by (ts, id) order, not by arrival, so a trade
 *   arriving out of order inside an open bar lands where it belongs: an earlier trade can become
 *   the open but never moves the close.
 * - A trade id already counted in its bucket is a duplicate and changes nothing.
 * - A trade for a bucket that has closed is late and changes nothing here; storage still takes it
 *   (the database aggregates are the record; this is the live view).
 * - Volume is the exact sum of sizes rounded once (see ExactSum), so it does not depend on the
 *   order trades arrived in. OHLC values are trade prices, never computed, so they are exact.
 */
export class BarAggregator {
  readonly interval: Interval;
  readonly allowedLatenessMs: number;
  readonly #symbols = new Map<MarketSymbol, SymbolState>();
  /** Clock time given to `advance`, applied to symbols seen later too. */
  #clockWatermark = Number.NEGATIVE_INFINITY;

  constructor(options: AggregatorOptions) {
    this.interval = options.interval;
    this.allowedLatenessMs = options.allowedLatenessMs ?? 0;
    if (!(this.allowedLatenessMs >= 0)) throw new RangeError('allowedLatenessMs must be >= 0');
  }

  add(tick: Tick): AddResult {
    const state = this.#state(tick.symbol);
    const bucket = floorBucket(tick.ts, this.interval);
    if (bucket < state.closedBefore) return { status: 'late', events: [] };
    const existing = state.open.get(bucket);
    if (existing?.ids.has(tick.id)) return { status: 'duplicate', events: [] };

    const events: BarUpdate[] = [];
    if (tick.ts > state.watermark) {
      state.watermark = tick.ts;
      this.#closeBefore(tick.symbol, state, this.#closeLine(tick.ts), events);
    }
    let bar = existing;
    if (!bar) {
      bar = {
        time: bucket,
        open: tick.price,
        openKey: tick,
        close: tick.price,
        closeKey: tick,
        high: tick.price,
        low: tick.price,
        volume: new ExactSum(),
        ids: new Set(),
      };
      state.open.set(bucket, bar);
    } else {
      if (compareTrades(tick, bar.openKey) < 0) {
        bar.open = tick.price;
        bar.openKey = tick;
      }
      if (compareTrades(tick, bar.closeKey) > 0) {
        bar.close = tick.price;
        bar.closeKey = tick;
      }
      if (tick.price > bar.high) bar.high = tick.price;
      if (tick.price < bar.low) bar.low = tick.price;
    }
    bar.volume.add(tick.size);
    bar.ids.add(tick.id);
    events.push(this.#update(tick.symbol, bar, false));
    return { status: 'applied', events };
  }

  /**
   * Moves clock time forward: closes every bar whose bucket ended at least `allowedLatenessMs`
   * before `nowMs`, so a quiet market still closes its bars. Returns them, final, ascending per symbol.
   */
  advance(nowMs: EpochMs): BarUpdate[] {
    const events: BarUpdate[] = [];
    if (nowMs <= this.#clockWatermark) return events;
    this.#clockWatermark = nowMs;
    const line = this.#closeLine(nowMs);
    for (const [symbol, state] of this.#symbols) this.#closeBefore(symbol, state, line, events);
    return events;
  }

  /**
   * `advance` for one symbol only: a consumer replaying history for one symbol must not have its
   * bars closed by another symbol's live clock. Does not affect symbols seen later.
   */
  advanceSymbol(symbol: MarketSymbol, nowMs: EpochMs): BarUpdate[] {
    const events: BarUpdate[] = [];
    this.#closeBefore(symbol, this.#state(symbol), this.#closeLine(nowMs), events);
    return events;
  }

  /** Every bucket of `symbol` that opens before this time is closed (its trades are late). */
  closedBefore(symbol: MarketSymbol): EpochMs {
    return this.#symbols.get(symbol)?.closedBefore ?? Number.NEGATIVE_INFINITY;
  }

  /** The newest trade time seen for `symbol` (event time). */
  watermark(symbol: MarketSymbol): EpochMs {
    return this.#symbols.get(symbol)?.watermark ?? Number.NEGATIVE_INFINITY;
  }

  /** Closes every open bar (end of a batch or of a stream). */
  flush(): BarUpdate[] {
    const events: BarUpdate[] = [];
    for (const [symbol, state] of this.#symbols) {
      this.#closeBefore(symbol, state, Number.POSITIVE_INFINITY, events);
    }
    return events;
  }

  /** The newest open bar of `symbol` (the forming candle), as a copy. */
  forming(symbol: MarketSymbol): Bar | undefined {
    const state = this.#symbols.get(symbol);
    if (!state || state.open.size === 0) return undefined;
    let newest: OpenBar | undefined;
    for (const bar of state.open.values()) if (!newest || bar.time > newest.time) newest = bar;
    return newest && this.#snapshot(newest);
  }

  /** Every open bar of `symbol`, ascending, as copies. */
  openBars(symbol: MarketSymbol): Bar[] {
    const state = this.#symbols.get(symbol);
    if (!state) return [];
    return [...state.open.values()].sort((a, b) => a.time - b.time).map((b) => this.#snapshot(b));
  }

  symbols(): MarketSymbol[] {
    return [...this.#symbols.keys()];
  }

  /** Buckets strictly before the returned time close once time (event or clock) reaches `t`. */
  #closeLine(t: EpochMs): EpochMs {
    if (this.allowedLatenessMs === Number.POSITIVE_INFINITY) return Number.NEGATIVE_INFINITY;
    return floorBucket(t - this.allowedLatenessMs, this.interval);
  }

  #state(symbol: MarketSymbol): SymbolState {
    let state = this.#symbols.get(symbol);
    if (!state) {
      const line = Number.isFinite(this.#clockWatermark)
        ? this.#closeLine(this.#clockWatermark)
        : Number.NEGATIVE_INFINITY;
      state = { open: new Map(), closedBefore: line, watermark: Number.NEGATIVE_INFINITY };
      this.#symbols.set(symbol, state);
    }
    return state;
  }

  #closeBefore(symbol: MarketSymbol, state: SymbolState, line: EpochMs, out: BarUpdate[]): void {
    if (line <= state.closedBefore) return;
    state.closedBefore = line;
    const closing = [...state.open.values()].filter((b) => b.time < line);
    closing.sort((a, b) => a.time - b.time);
    for (const bar of closing) {
      state.open.delete(bar.time);
      out.push(this.#update(symbol, bar, true));
    }
  }

  #snapshot(bar: OpenBar): Bar {
    return {
      time: bar.time,
      open: bar.open,
      high: bar.high,
      low: bar.low,
      close: bar.close,
      volume: bar.volume.value(),
    };
  }

  #update(symbol: MarketSymbol, bar: OpenBar, final: boolean): BarUpdate {
    return { v: 1, symbol, interval: this.interval, bar: this.#snapshot(bar), final };
  }
}

/**
 * Batch aggregation: the bars of `ticks` (any order, duplicates allowed) per symbol, ascending.
 * This is the oracle the storage and API tests compare against.
 */
export function aggregateTicks(
  ticks: Iterable<Tick>,
  interval: Interval,
): Map<MarketSymbol, Bar[]> {
  const aggregator = new BarAggregator({ interval, allowedLatenessMs: Number.POSITIVE_INFINITY });
  for (const tick of ticks) aggregator.add(tick);
  const out = new Map<MarketSymbol, Bar[]>();
  for (const event of aggregator.flush()) {
    let bars = out.get(event.symbol);
    if (!bars) out.set(event.symbol, (bars = []));
    bars.push(event.bar);
  }
  return out;
}
