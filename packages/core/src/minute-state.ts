import type { Bar } from './bars.js';
import { ExactSum } from './exact-sum.js';
import type { Tick } from './ticks.js';
import { compareTrades } from './ticks.js';
import type { EpochMs } from './time.js';

/** A trade's place in the total order (compareTrades): time, then id. */
export interface TradeKey {
  ts: EpochMs;
  id: string;
}

/**
 * Everything needed to fold more trades into a minute exactly, without its earlier trades: the
 * bar, which trades hold its open and close, the volume as exact partials, and the count. A
 * minute's raw trades may be compressed or dropped long after the minute was built; this state
 * is what keeps a late trade's merge identical to a rebuild from all trades.
 */
export interface MinuteState {
  open: number;
  high: number;
  low: number;
  close: number;
  volume: ExactSum;
  trades: number;
  /** The open trade's key; null when unknown (rows stored before keys were kept): open stands. */
  openKey: TradeKey | null;
  /** The close trade's key; null when unknown: close stands. */
  closeKey: TradeKey | null;
}

export type MinuteTrade = Pick<Tick, 'ts' | 'id' | 'price' | 'size'>;

/**
 * Folds `trades` (new to the minute: callers pass only trades not counted before) into `state`,
 * or starts the minute from them. Open and close follow compareTrades, so the result does not
 * depend on how the minute's trades were split across calls or ordered within them.
 */
export function mergeMinute(
  state: MinuteState | undefined,
  trades: readonly MinuteTrade[],
): MinuteState | undefined {
  let out = state && { ...state, volume: state.volume.clone() };
  for (const t of trades) {
    if (!out) {
      const key = { ts: t.ts, id: t.id };
      out = {
        open: t.price,
        high: t.price,
        low: t.price,
        close: t.price,
        volume: new ExactSum().add(t.size),
        trades: 1,
        openKey: key,
        closeKey: key,
      };
      continue;
    }
    if (t.price > out.high) out.high = t.price;
    if (t.price < out.low) out.low = t.price;
    out.volume.add(t.size);
    out.trades++;
    if (out.openKey && compareTrades(t, out.openKey) < 0) {
      out.open = t.price;
      out.openKey = { ts: t.ts, id: t.id };
    }
    if (out.closeKey && compareTrades(t, out.closeKey) > 0) {
      out.close = t.price;
      out.closeKey = { ts: t.ts, id: t.id };
    }
  }
  return out;
}

/** The bar a minute state describes, at `time`. */
export function minuteBar(time: EpochMs, state: MinuteState): Bar {
  return {
    time,
    open: state.open,
    high: state.high,
    low: state.low,
    close: state.close,
    volume: state.volume.value(),
  };
}
