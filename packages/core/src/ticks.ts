import Joi from 'joi';
import type { MarketSymbol } from './symbols.js';
import { isCanonicalSymbol, parseSymbol } from './symbols.js';
import type { EpochMs } from './time.js';
import type { Decoded } from './validation.js';
import { parseJsonMessage, validateWith } from './validation.js';

export const TICK_MESSAGE_VERSION = 1;
export const TRADE_SIDES = ['buy', 'sell', 'unknown'] as const;
export type TradeSide = (typeof TRADE_SIDES)[number];
export const TICK_SOURCES = ['cryptocompare', 'synthetic', 'file', 'backfill', 'replay'] as const;
export type TickSource = (typeof TICK_SOURCES)[number];

/** One trade, as carried on `tick-data` (value JSON; the key is the symbol). */
export interface Tick {
  v: typeof TICK_MESSAGE_VERSION;
  symbol: MarketSymbol;
  /** Trade time, epoch milliseconds UTC. */
  ts: EpochMs;
  price: number;
  size: number;
  side: TradeSide;
  /** Trade id, unique per symbol at the source. */
  id: string;
  source: TickSource;
}

/**
 * Bounds that catch unit mistakes: a timestamp in seconds reads as January 1970 and is refused.
 * The floor is the Bitcoin genesis block (2009-01-03); the ceiling is 2100-01-01.
 */
export const MIN_TICK_TS_MS = Date.UTC(2009, 0, 3);
export const MAX_TICK_TS_MS = Date.UTC(2100, 0, 1);
export const MAX_TRADE_ID_LENGTH = 128;
/** A tick is ~200 bytes of JSON; anything far larger is not one. */
export const MAX_TICK_MESSAGE_BYTES = 4_096;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Why PostgreSQL would refuse (or silently alter) `text` holding this string, if it would:
 * `text` cannot hold U+0000 (SQLSTATE 22021), and a lone UTF-16 surrogate has no UTF-8 form, so
 * it would be stored as U+FFFD and no longer equal the id in memory. Checked at decode time, so
 * a trade storage would refuse never reaches the live candles.
 */
export function storableTextProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'contains U+0000, which PostgreSQL text cannot store';
  if (LONE_SURROGATE.test(value)) return 'contains a lone UTF-16 surrogate (not valid Unicode)';
  return undefined;
}

const canonicalSymbol = Joi.string()
  .required()
  .custom((value: string, helpers) => {
    if (isCanonicalSymbol(value)) return value;
    let hint = '';
    try {
      hint = ` (write ${parseSymbol(value)})`;
    } catch {
      // not a symbol at all; no hint to give
    }
    return helpers.message({
      custom: `symbol ${JSON.stringify(value)} is not canonical BASE-QUOTE${hint}`,
    });
  });

export const tickSchema: Joi.ObjectSchema<Tick> = Joi.object<Tick>({
  v: Joi.number().valid(TICK_MESSAGE_VERSION).required(),
  symbol: canonicalSymbol,
  ts: Joi.number().integer().min(MIN_TICK_TS_MS).max(MAX_TICK_TS_MS).required(),
  price: Joi.number().positive().required(),
  size: Joi.number().positive().required(),
  side: Joi.string()
    .valid(...TRADE_SIDES)
    .required(),
  id: Joi.string()
    .min(1)
    .max(MAX_TRADE_ID_LENGTH)
    .required()
    .custom((value: string, helpers) => {
      const problem = storableTextProblem(value);
      return problem ? helpers.message({ custom: `id ${problem}` }) : value;
    }),
  source: Joi.string()
    .valid(...TICK_SOURCES)
    .required(),
});

/**
 * Decodes a `tick-data` message value. Never throws: a refused message comes back with the
 * reason, ready for the dead-letter topic. An unknown version is named as such, so a consumer
 * older than its producer says why it cannot read the message.
 */
export function decodeTick(raw: Uint8Array | string): Decoded<Tick> {
  const parsed = parseJsonMessage(raw, MAX_TICK_MESSAGE_BYTES);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'tick message must be a JSON object' };
  }
  const version = (value as { v?: unknown }).v;
  if (version !== TICK_MESSAGE_VERSION) {
    return {
      ok: false,
      reason:
        version === undefined
          ? 'tick message has no version field v'
          : `unsupported tick message version ${JSON.stringify(version)} (this reader knows v${TICK_MESSAGE_VERSION})`,
    };
  }
  // Nearly every message is a well-formed tick: checked by hand, it skips joi (a third of the
  // consumer's decode time). Anything the check does not accept gets joi's verdict and reason.
  return fastTick(value as Record<string, unknown>) ?? validateWith(tickSchema, value);
}

const SIDES: ReadonlySet<unknown> = new Set(TRADE_SIDES);
const SOURCES: ReadonlySet<unknown> = new Set(TICK_SOURCES);

/** Canonical symbols seen, so the check is a lookup; bounded, as symbols come off the wire. */
const canonicalSeen = new Set<string>();
const MAX_CANONICAL_SEEN = 10_000;

function canonical(symbol: string): boolean {
  if (canonicalSeen.has(symbol)) return true;
  if (!isCanonicalSymbol(symbol)) return false;
  if (canonicalSeen.size >= MAX_CANONICAL_SEEN) canonicalSeen.clear();
  canonicalSeen.add(symbol);
  return true;
}

function positiveSafe(n: unknown): n is number {
  // joi's number(): finite and within the safe range; positive(): above zero.
  return typeof n === 'number' && n > 0 && n <= Number.MAX_SAFE_INTEGER;
}

/**
 * The tick when `value` passes tickSchema exactly as joi would, with the same result (the known
 * fields, unknown ones stripped); `undefined` when joi must decide. Never accepts what joi refuses
 * (ticks.unit.test.ts compares the two on many inputs).
 */
export function fastTick(value: Record<string, unknown>): { ok: true; value: Tick } | undefined {
  const { v, symbol, ts, price, size, side, id, source } = value;
  if (
    v !== TICK_MESSAGE_VERSION ||
    typeof symbol !== 'string' ||
    !canonical(symbol) ||
    typeof ts !== 'number' ||
    !Number.isInteger(ts) ||
    ts < MIN_TICK_TS_MS ||
    ts > MAX_TICK_TS_MS ||
    !positiveSafe(price) ||
    !positiveSafe(size) ||
    !SIDES.has(side) ||
    typeof id !== 'string' ||
    id.length < 1 ||
    id.length > MAX_TRADE_ID_LENGTH ||
    storableTextProblem(id) !== undefined ||
    !SOURCES.has(source)
  ) {
    return undefined;
  }
  return {
    ok: true,
    value: {
      v,
      symbol: symbol as MarketSymbol,
      ts,
      price,
      size,
      side: side as TradeSide,
      id,
      source: source as TickSource,
    },
  };
}

export function encodeTick(tick: Tick): string {
  return JSON.stringify({
    v: tick.v,
    symbol: tick.symbol,
    ts: tick.ts,
    price: tick.price,
    size: tick.size,
    side: tick.side,
    id: tick.id,
    source: tick.source,
  });
}

/**
 * The total order of trades used everywhere a "first" or "last" trade is chosen: by time, then
 * by trade id in code-unit order (SQL must use `COLLATE "C"` to agree). It makes open and close
 * independent of arrival order even when two trades share a millisecond.
 */
export function compareTrades(a: Pick<Tick, 'ts' | 'id'>, b: Pick<Tick, 'ts' | 'id'>): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
