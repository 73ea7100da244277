import type { EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import {
  AppError,
  invalidArgument,
  parseInstant,
  parseInterval,
  parseResolution,
  parseSymbol,
} from '@candlestream/core';
import Joi from 'joi';

/** A joi rule that runs one of core's parsers, so the API and the domain agree on syntax. */
function parsed<T>(parse: (text: string) => T): Joi.StringSchema {
  return Joi.string()
    .max(64)
    .custom((value: string, helpers) => {
      try {
        return parse(value);
      } catch (err) {
        return helpers.message({ custom: `{{#label}} ${(err as Error).message}` });
      }
    });
}

function instant(value: string): EpochMs {
  const ms = parseInstant(value);
  if (ms === undefined) {
    throw new Error(
      `${JSON.stringify(value)} is not an ISO-8601 time such as 2024-01-01T00:00:00Z`,
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
  interval: () => parsed<Interval>(parseInterval),
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
