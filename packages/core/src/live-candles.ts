import type { AddStatus } from './aggregator.js';
import { BarAggregator } from './aggregator.js';
import type { Bar, BarUpdate } from './bars.js';
import { ExactSum } from './exact-sum.js';
import type { Interval } from './intervals.js';
import { INTERVALS, INTERVAL_MS, floorBucket } from './intervals.js';
import type { MarketSymbol } from './symbols.js';
import type { Tick } from './ticks.js';
import type { EpochMs } from './time.js';

/** Every interval above 1m, each built from the closed minutes of its bucket. */
const HIGHER: readonly Interval[] = INTERVALS.filter((i) => i !== '1m');

/** The closed minutes of one higher bucket, folded. */
interface FoldedBucket {
  time: EpochMs;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: ExactSum;
}

export interface LiveCandlesOptions {
  /** How long after its end a minute still takes trades (event time); see BarAggregator. */
  allowedLatenessMs?: number;
}

export interface LiveAddResult {
  status: AddStatus;
  /** Updates for every interval: closed bars (final, ascending), then the forming bars. */
  events: BarUpdate[];
}

export interface RestoreInput {
  /** Closed 1m bars of the higher buckets still open, ascending, all before `openFrom`. */
  closedMinutes: readonly Bar[];
  /** The stored trades of the minutes from `openFrom` on, in any order. */
  trades: readonly Tick[];
  /** First minute still open; older trades arriving later are late. */
  openFrom: EpochMs;
}

/**
 * The live candles of every interval, for any number of symbols, from one stream of trades.
 *
 * Only minutes are aggregated from trades (BarAggregator: order-independent OHLC, duplicate ids
 * ignored, lateness); a higher interval's forming bar is its bucket's closed minutes folded,
 * merged with its open minutes. So memory holds trade ids for open minutes only, never a week's,
 * and after a restart the state comes back from the stored 1m bars plus one minute of trades.
 * Higher volumes are sums of minute volumes, exactly as the database's aggregates compute them.
 */
export class LiveCandles {
  readonly #minutes: BarAggregator;
  readonly #partials = new Map<MarketSymbol, Map<Interval, FoldedBucket>>();

  constructor(options: LiveCandlesOptions = {}) {
    this.#minutes = new BarAggregator({
      interval: '1m',
      allowedLatenessMs: options.allowedLatenessMs ?? 0,
    });
  }

  get allowedLatenessMs(): number {
    return this.#minutes.allowedLatenessMs;
  }

  add(tick: Tick): LiveAddResult {
    const result = this.#minutes.add(tick);
    if (result.status !== 'applied') return { status: result.status, events: [] };
    const events = this.#settle(tick.symbol, result.events);
    const changed = result.events[result.events.length - 1];
    if (changed) events.push(...this.#formingHigher(tick.symbol, changed.bar.time));
    return { status: 'applied', events };
  }

  /**
   * `add` for a run of trades, with the higher intervals' forming bars computed once at the end
   * (for every bucket a trade touched) instead of after every trade: per trade they were most of
   * the work, and all but the last of each were thinned away (coalesceUpdates) before publishing.
   * Thinned, the events equal those of `add` trade by trade: the same finals in the same order,
   * and the same last forming bar of each bucket still open.
   */
  addAll(ticks: readonly Tick[]): { statuses: AddStatus[]; events: BarUpdate[] } {
    const statuses: AddStatus[] = [];
    const events: BarUpdate[] = [];
    const touched = new Map<MarketSymbol, Set<EpochMs>>();
    for (const tick of ticks) {
      const result = this.#minutes.add(tick);
      statuses.push(result.status);
      if (result.status !== 'applied') continue;
      for (const event of this.#settle(tick.symbol, result.events)) events.push(event);
      const changed = result.events[result.events.length - 1];
      if (!changed) continue;
      let minutes = touched.get(tick.symbol);
      if (!minutes) touched.set(tick.symbol, (minutes = new Set()));
      minutes.add(changed.bar.time);
    }
    for (const [symbol, minutes] of touched) {
      const openMinutes = this.#minutes.openBars(symbol);
      const done = new Set<string>();
      for (const minute of [...minutes].sort((a, b) => a - b)) {
        for (const interval of HIGHER) {
          const time = floorBucket(minute, interval);
          const key = `${interval} ${time}`;
          if (done.has(key)) continue;
          done.add(key);
          const bar = this.#merged(symbol, interval, time, openMinutes);
          if (bar) events.push({ v: 1, symbol, interval, bar, final: false });
        }
      }
    }
    return { statuses, events };
  }

  /** Closes `symbol`'s bars that ended `allowedLatenessMs` or more before `nowMs` (a quiet market). */
  advance(symbol: MarketSymbol, nowMs: EpochMs): BarUpdate[] {
    return this.#settle(symbol, this.#minutes.advanceSymbol(symbol, nowMs));
  }

  /**
   * Rebuilds `symbol`'s state after a restart (from storage) and returns its forming bars, so a
   * listener that missed the restart gets the current state at once.
   */
  restore(symbol: MarketSymbol, input: RestoreInput): BarUpdate[] {
    const partials = this.#partialsOf(symbol);
    partials.clear();
    for (const interval of HIGHER) {
      const open = floorBucket(input.openFrom, interval);
      for (const bar of input.closedMinutes) {
        if (bar.time >= input.openFrom) break;
        if (floorBucket(bar.time, interval) === open) this.#fold(partials, interval, bar);
      }
    }
    // Mark everything before openFrom closed, then replay the open minutes' trades.
    this.#minutes.advanceSymbol(symbol, input.openFrom + this.#minutes.allowedLatenessMs);
    const closed: BarUpdate[] = [];
    for (const tick of input.trades) {
      closed.push(...this.#minutes.add(tick).events.filter((e) => e.final));
    }
    const events = this.#settle(symbol, closed);
    for (const bar of this.#minutes.openBars(symbol)) {
      events.push({ v: 1, symbol, interval: '1m', bar, final: false });
    }
    const newest = this.#minutes.forming(symbol)?.time ?? input.openFrom;
    events.push(...this.#formingHigher(symbol, newest));
    return events;
  }

  /** The forming bar of `symbol` at `interval`: the newest open bucket, or undefined. */
  forming(symbol: MarketSymbol, interval: Interval): Bar | undefined {
    const minute = this.#minutes.forming(symbol);
    if (interval === '1m') return minute;
    const partial = this.#partials.get(symbol)?.get(interval);
    const time = minute ? floorBucket(minute.time, interval) : partial?.time;
    return time === undefined ? undefined : this.#merged(symbol, interval, time);
  }

  symbols(): MarketSymbol[] {
    return this.#minutes.symbols();
  }

  /** Newest trade time of `symbol` seen here. */
  watermark(symbol: MarketSymbol): EpochMs {
    return this.#minutes.watermark(symbol);
  }

  /** Minutes of `symbol` before this are closed here (by trades or the clock); -Infinity if none. */
  closedBefore(symbol: MarketSymbol): EpochMs {
    return this.#minutes.closedBefore(symbol);
  }

  #partialsOf(symbol: MarketSymbol): Map<Interval, FoldedBucket> {
    let partials = this.#partials.get(symbol);
    if (!partials) this.#partials.set(symbol, (partials = new Map<Interval, FoldedBucket>()));
    return partials;
  }

  /** Passes minute updates through, folds closed minutes up, and closes finished higher bars. */
  #settle(symbol: MarketSymbol, minuteEvents: readonly BarUpdate[]): BarUpdate[] {
    const out: BarUpdate[] = [];
    const partials = this.#partialsOf(symbol);
    for (const event of minuteEvents) {
      if (!event.final) continue;
      out.push(event);
      for (const interval of HIGHER) {
        const partial = partials.get(interval);
        if (partial && partial.time !== floorBucket(event.bar.time, interval)) {
          out.push(this.#final(symbol, interval, partial));
          partials.delete(interval);
        }
        this.#fold(partials, interval, event.bar);
      }
    }
    const closedBefore = this.#minutes.closedBefore(symbol);
    for (const interval of HIGHER) {
      const partial = partials.get(interval);
      if (partial && partial.time + INTERVAL_MS[interval] <= closedBefore) {
        out.push(this.#final(symbol, interval, partial));
        partials.delete(interval);
      }
    }
    // Closed bars first: a listener learns a bar is final before it sees the next one form.
    for (const event of minuteEvents) if (!event.final) out.push(event);
    return out;
  }

  #fold(partials: Map<Interval, FoldedBucket>, interval: Interval, bar: Bar): void {
    const partial = partials.get(interval);
    if (!partial) {
      const volume = new ExactSum().add(bar.volume);
      partials.set(interval, {
        time: floorBucket(bar.time, interval),
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
        volume,
      });
      return;
    }
    // Minutes arrive ascending, so the newest minute's close is the bucket's close.
    partial.high = Math.max(partial.high, bar.high);
    partial.low = Math.min(partial.low, bar.low);
    partial.close = bar.close;
    partial.volume.add(bar.volume);
  }

  /** The bar of the higher bucket at `time`: closed minutes merged with its open minutes. */
  #merged(
    symbol: MarketSymbol,
    interval: Interval,
    time: EpochMs,
    openMinutes: readonly Bar[] = this.#minutes.openBars(symbol),
  ): Bar | undefined {
    const partial = this.#partials.get(symbol)?.get(interval);
    let bar: Bar | undefined;
    let volume: ExactSum | undefined;
    if (partial?.time === time) {
      bar = { ...partial, volume: 0 };
      volume = partial.volume.clone();
    }
    for (const minute of openMinutes) {
      if (floorBucket(minute.time, interval) !== time) continue;
      if (!bar || !volume) {
        bar = { ...minute, time };
        volume = new ExactSum();
      } else {
        bar.high = Math.max(bar.high, minute.high);
        bar.low = Math.min(bar.low, minute.low);
        bar.close = minute.close;
      }
      volume.add(minute.volume);
    }
    if (bar && volume) bar.volume = volume.value();
    return bar;
  }

  #formingHigher(symbol: MarketSymbol, minuteTime: EpochMs): BarUpdate[] {
    const out: BarUpdate[] = [];
    // One snapshot of the open minutes serves every interval.
    const openMinutes = this.#minutes.openBars(symbol);
    for (const interval of HIGHER) {
      const bar = this.#merged(symbol, interval, floorBucket(minuteTime, interval), openMinutes);
      if (bar) out.push({ v: 1, symbol, interval, bar, final: false });
    }
    return out;
  }

  #final(symbol: MarketSymbol, interval: Interval, partial: FoldedBucket): BarUpdate {
    const { volume, ...ohlc } = partial;
    return { v: 1, symbol, interval, bar: { ...ohlc, volume: volume.value() }, final: true };
  }
}

/**
 * Thins a run of updates for publishing: every final stays, a forming update stays only if no
 * later update of the same bar follows. Order is kept, so per series nothing goes back in time.
 */
export function coalesceUpdates(events: readonly BarUpdate[]): BarUpdate[] {
  const kept: (BarUpdate | undefined)[] = [];
  const formingAt = new Map<string, number>();
  for (const event of events) {
    const key = `${event.symbol} ${event.interval} ${event.bar.time}`;
    const previous = formingAt.get(key);
    if (previous !== undefined) kept[previous] = undefined;
    formingAt.delete(key);
    if (!event.final) formingAt.set(key, kept.length);
    kept.push(event);
  }
  return kept.filter((e): e is BarUpdate => e !== undefined);
}
