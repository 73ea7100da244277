import type { EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import {
  AppError,
  MAX_TICK_TS_MS,
  MIN_TICK_TS_MS,
  invalidArgument,
  parseInstant,
  toIso,
  parseIntervalOrResolution,
  parseResolution,
  parseSymbol,
} from '@candlestream/core';
import Joi from 'joi';

/**
 * A joi rule that runs one of core's parsers, so the API and the domain agree on syntax. Core's
 * messages already name what they parsed (`interval "2m" is not…`); the parameter's name replaces
 * that word rather than repeating it.
 */
function parsed<T>(parse: (text: string) => T): Joi.StringSchema {
  return Joi.string()
    .max(64)
    .custom((value: string, helpers) => {
      try {
        return parse(value);
      } catch (err) {
        const message = (err as Error).message;
        const key = String(helpers.state.path?.at(-1) ?? '');
        const named =
          key !== '' && message.startsWith(`${key} `) ? message.slice(key.length + 1) : message;
        return helpers.message({ custom: `{{#label}} ${named}` });
      }
    });
}

/** Instants a query may name: the platform's trade times (2009-01-03 .. 2100-01-01). */
const EARLIEST_MS = MIN_TICK_TS_MS;
const LATEST_MS = MAX_TICK_TS_MS;
/** Epoch milliseconds of every instant in that range have exactly this many digits. */
const EPOCH_MS_DIGITS = 13;

/**
 * `startDate`/`endDate`: ISO-8601 (`2024-01-01`, `2024-01-01T12:00:00Z`, `…+02:00`), or epoch
 * milliseconds written with exactly 13 digits. Any other integer is refused rather than guessed at
 * (`1796100000` is epoch seconds, not a moment in 1970), and so is anything outside the range.
 */
function instant(value: string): EpochMs {
  const text = value.trim();
  let ms: EpochMs | undefined;
  if (/^[+-]?\d+$/.test(text)) {
    if (!new RegExp(`^\\d{${EPOCH_MS_DIGITS}}$`).test(text)) {
      const hint = /^\d{10}$/.test(text) ? ` (for epoch seconds, append 000)` : '';
      throw new Error(
        `${JSON.stringify(text.slice(0, 24))} is not epoch milliseconds: those have ${EPOCH_MS_DIGITS} digits${hint}`,
      );
    }
    ms = Number(text);
  } else {
    ms = parseInstant(text);
  }
  if (ms === undefined) {
    throw new Error(
      `${JSON.stringify(value.slice(0, 40))} is not an ISO-8601 time such as 2024-01-01T00:00:00Z ` +
        `or epoch milliseconds (${EPOCH_MS_DIGITS} digits)`,
    );
  }
  if (ms < EARLIEST_MS || ms > LATEST_MS) {
    throw new Error(
      `${JSON.stringify(value.slice(0, 40))} is outside ${toIso(EARLIEST_MS)} .. ${toIso(LATEST_MS)}`,
    );
  }
  return ms;
}

/** Whole epoch seconds (UDF `from`, `to`), within the years a trade can have. */
function seconds(value: string): EpochMs {
  if (!/^-?\d{1,12}$/.test(value.trim())) throw new Error('must be whole epoch seconds');
  const ms = Number(value) * 1_000;
  if (ms < 0 || ms > Date.UTC(2100, 0, 1)) throw new Error('is out of range');
  return ms;
}

export const rules = {
  symbol: () => parsed<MarketSymbol>(parseSymbol),
  /** Interval names and TradingView resolutions both: the chart and UDF send `1D`, `60`. */
  interval: () => parsed<Interval>(parseIntervalOrResolution),
  resolution: () => parsed<Interval>(parseResolution),
  instant: () => parsed<EpochMs>(instant),
  seconds: () => parsed<EpochMs>(seconds),
  count: (max: number) => Joi.number().integer().min(1).max(max),
};

/**
 * Validates a query string object: each named parameter given at most once, converted, with the
 * first problem as the message (`startDate "x" is not an ISO-8601 time…`). Other parameters are
 * ignored (cache busters and the like).
 */
export function validateQuery<T>(schema: Joi.ObjectSchema<T>, query: unknown): T {
  const result = schema.unknown(true).validate(query, {
    convert: true,
    abortEarly: true,
    errors: { wrap: { label: false } },
  });
  if (result.error) throw invalidArgument(result.error.message.replace(/^"?(\w+)"? /, '$1 '));
  return result.value;
}

export function unknownSymbol(symbol: MarketSymbol): AppError {
  return new AppError('NOT_FOUND', `unknown symbol ${symbol}`);
}
