/**
 * The chart's indicators (SMA, EMA, VWAP, RSI) computed with trading-signals (MIT, no
 * dependencies, streaming). Each one is fed the loaded bars once, then every live bar: the
 * forming bar *replaces* the indicator's last input (`update(value, true)`), a new bar adds one,
 * so the line moves with the forming candle without recomputing the history.
 */
import type { Bar } from '@candlestream/datafeed';
import { EMA, RSI, SMA, VWAP } from 'trading-signals';

export type StudyId = 'sma' | 'ema' | 'vwap' | 'rsi';
export const STUDY_IDS: readonly StudyId[] = ['sma', 'ema', 'vwap', 'rsi'];

export interface StudySpec {
  id: StudyId;
  label: string;
  color: string;
  /** `price` draws over the candles; `oscillator` gets a pane of its own (0-100). */
  pane: 'price' | 'oscillator';
}

export const STUDIES: Record<StudyId, StudySpec> = {
  sma: { id: 'sma', label: 'SMA 20', color: '#f6c343', pane: 'price' },
  ema: { id: 'ema', label: 'EMA 50', color: '#c678dd', pane: 'price' },
  vwap: { id: 'vwap', label: 'VWAP', color: '#42a5f5', pane: 'price' },
  rsi: { id: 'rsi', label: 'RSI 14', color: '#7e57c2', pane: 'oscillator' },
};

/** A UTC day: VWAP starts again each session, as exchanges and TradingView's VWAP do. */
const DAY_MS = 86_400_000;

export interface StudyPoint {
  /** The bar's open time, epoch ms. */
  time: number;
  value: number;
}

/** One indicator over one series of bars; `push` takes each bar in time order, repeats allowed. */
export class Study {
  readonly spec: StudySpec;
  readonly #resolutionMs: number;
  #indicator: SMA | EMA | RSI | VWAP;
  /** The time of the bar last fed to the indicator, which a repeat of it replaces. */
  #lastTime: number | undefined;
  #session: number | undefined;
  /** Results by bar time, for the legend under the crosshair. */
  readonly values = new Map<number, number>();

  constructor(id: StudyId, resolutionMs: number) {
    this.spec = STUDIES[id];
    this.#resolutionMs = resolutionMs;
    this.#indicator = this.#create();
  }

  #create(): SMA | EMA | RSI | VWAP {
    switch (this.spec.id) {
      case 'sma':
        return new SMA(20);
      case 'ema':
        return new EMA(50);
      case 'rsi':
        return new RSI(14);
      case 'vwap':
        return new VWAP();
    }
  }

  /** Feeds one bar (a new one, or the forming bar again); the indicator's value at it, if any. */
  push(bar: Bar): StudyPoint | undefined {
    if (this.#lastTime !== undefined && bar.time < this.#lastTime) return undefined;
    const replace = bar.time === this.#lastTime;
    let value: number | null;
    const indicator = this.#indicator;
    if (indicator instanceof VWAP) {
      const volume = bar.volume ?? 0;
      if (volume <= 0) return undefined; // VWAP ignores a bar without volume; keep it unfed
      // Intraday bars: one session per UTC day. Daily and longer: over all the loaded bars.
      const session = this.#resolutionMs < DAY_MS ? Math.floor(bar.time / DAY_MS) : 0;
      if (session !== this.#session) {
        this.#session = session;
        this.#indicator = new VWAP();
        this.#lastTime = undefined;
      }
      const candle = { high: bar.high, low: bar.low, close: bar.close, volume };
      value = (this.#indicator as VWAP).update(candle, replace && this.#lastTime !== undefined);
    } else {
      value = indicator.update(bar.close, replace);
    }
    this.#lastTime = bar.time;
    if (value === null || !Number.isFinite(value)) {
      this.values.delete(bar.time);
      return undefined;
    }
    this.values.set(bar.time, value);
    return { time: bar.time, value };
  }

  /** Feeds the loaded bars from scratch; the points to draw. */
  static over(id: StudyId, resolutionMs: number, bars: readonly Bar[]): [Study, StudyPoint[]] {
    const study = new Study(id, resolutionMs);
    const points: StudyPoint[] = [];
    for (const bar of bars) {
      const point = study.push(bar);
      if (point) points.push(point);
    }
    return [study, points];
  }
}

/** `sma,rsi` from the URL, unknown names dropped. */
export function parseStudies(text: string | null): StudyId[] {
  const wanted = new Set((text ?? '').split(',').map((s) => s.trim().toLowerCase()));
  return STUDY_IDS.filter((id) => wanted.has(id));
}
