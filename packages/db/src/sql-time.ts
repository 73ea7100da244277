/**
 * Times cross the SQL boundary as epoch milliseconds (the core's `EpochMs`): these build the two
 * conversions every query here uses, so they are written one way.
 */

/** A `timestamptz` column (or expression) as epoch ms, a float8 the driver returns as a number. */
export const epochMsSql = (column: string): string =>
  `(extract(epoch FROM ${column}) * 1000)::float8`;

/** A bound epoch-ms parameter (`$2::bigint`, `$4::float8`, a column) as a `timestamptz`. */
export const fromEpochMsSql = (param: string): string =>
  `(TIMESTAMPTZ 'epoch' + ${param} * INTERVAL '1 millisecond')`;

/**
 * A time of whole seconds (a bar's bucket) as epoch ms, in float8 arithmetic: exact there (an
 * integer below 2^53 times 1000), and half the server time of `epochMsSql`'s numeric extract
 * over a year of hourly rows. Not for trade times, which have fractions of a second.
 */
export const bucketEpochMsSql = (column: string): string =>
  `(date_part('epoch', ${column}) * 1000)`;
