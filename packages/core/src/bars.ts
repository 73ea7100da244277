import Joi from 'joi';
import type { Interval } from './intervals.js';
import { INTERVALS } from './intervals.js';
import type { MarketSymbol } from './symbols.js';
import { isCanonicalSymbol } from './symbols.js';
import type { EpochMs } from './time.js';
import type { Decoded } from './validation.js';
import { parseJsonMessage, validateWith } from './validation.js';

/** One OHLCV candle. `time` is the open time of its UTC bucket. */
export interface Bar {
  time: EpochMs;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** A change to a live candle: the forming bar (`final: false`) or a closed one (`final: true`). */
export interface BarUpdate {
  v: 1;
  symbol: MarketSymbol;
  interval: Interval;
  bar: Bar;
  final: boolean;
}

/** Why a bar breaks the OHLC invariants, or undefined when it holds them. */
export function barProblem(bar: Bar): string | undefined {
  const values = [bar.open, bar.high, bar.low, bar.close, bar.volume];
  if (!values.every(Number.isFinite)) return 'has a non-finite value';
  if (bar.low <= 0) return 'has a non-positive price';
  if (bar.volume < 0) return 'has a negative volume';
  if (bar.high < Math.max(bar.open, bar.close, bar.low)) return 'has high below open, close or low';
  if (bar.low > Math.min(bar.open, bar.close)) return 'has low above open or close';
  return undefined;
}

export const barSchema: Joi.ObjectSchema<Bar> = Joi.object<Bar>({
  time: Joi.number().integer().required(),
  open: Joi.number().positive().required(),
  high: Joi.number().positive().required(),
  low: Joi.number().positive().required(),
  close: Joi.number().positive().required(),
  volume: Joi.number().min(0).required(),
}).custom((bar: Bar, helpers) => {
  const problem = barProblem(bar);
  return problem ? helpers.message({ custom: `bar ${problem}` }) : bar;
});

export const barUpdateSchema: Joi.ObjectSchema<BarUpdate> = Joi.object<BarUpdate>({
  v: Joi.number().valid(1).required(),
  symbol: Joi.string()
    .required()
    .custom((s: string, helpers) =>
      isCanonicalSymbol(s) ? s : helpers.message({ custom: `symbol ${s} is not canonical` }),
    ),
  interval: Joi.string()
    .valid(...INTERVALS)
    .required(),
  bar: barSchema.required(),
  final: Joi.boolean().required(),
});

export const MAX_BAR_UPDATE_BYTES = 4_096;

export function decodeBarUpdate(raw: Uint8Array | string): Decoded<BarUpdate> {
  const parsed = parseJsonMessage(raw, MAX_BAR_UPDATE_BYTES);
  return parsed.ok ? validateWith(barUpdateSchema, parsed.value) : parsed;
}
