/**
 * The CryptoCompare streamer (WebSocket API v2) wire format, pure: message types, the trade
 * channel, trade decoding and the de-duplication of re-sent trades.
 * (min-api.cryptocompare.com/documentation/websockets: "How to connect", "Channels > Trade")
 */
import type { EpochMs, MarketSymbol, Tick, TradeSide } from '@candlestream/core';
import {
  MAX_TICK_TS_MS,
  MAX_TRADE_ID_LENGTH,
  MIN_TICK_TS_MS,
  SECOND_MS,
  splitSymbol,
} from '@candlestream/core';

/** Every frame carries `TYPE`, a string (never branch on MESSAGE, the docs say). */
export const CC_TYPE = {
  TRADE: '0',
  LOAD_COMPLETE: '3',
  SUBSCRIBE_COMPLETE: '16',
  UNSUBSCRIBE_COMPLETE: '17',
  UNSUBSCRIBE_ALL_COMPLETE: '18',
  WELCOME: '20',
  UNAUTHORIZED: '401',
  RATE_LIMIT: '429',
  ERROR: '500',
  HEARTBEAT: '999',
} as const;

/** Trade flag bits (`F`): 1 sell, 2 buy, 4 unknown, 8 reversed (the pair was inverted). */
export const TRADE_FLAG_SELL = 1;
export const TRADE_FLAG_BUY = 2;

const NANOS_PER_MS = 1_000_000;
const NANOS_PER_SECOND = 1_000_000_000;

/** The trade channel of one pair on one exchange: `0~Coinbase~BTC~USD`. */
export function tradeSubscription(exchange: string, symbol: MarketSymbol): string {
  const { base, quote } = splitSymbol(symbol);
  return `0~${exchange}~${base}~${quote}`;
}

/** `FSYM~TSYM` of a symbol, the key trades are matched back to symbols with. */
export function pairKey(symbol: MarketSymbol): string {
  const { base, quote } = splitSymbol(symbol);
  return `${base}~${quote}`;
}

export type CcMessage = Readonly<Record<string, unknown>> & { readonly TYPE: string };

/** Why a frame was skipped; the source counts them per kind. */
export type MalformedKind =
  'binary-frame' | 'invalid-json' | 'not-an-object' | 'no-type' | 'bad-trade' | 'unknown-pair';

export interface Rejected {
  ok: false;
  kind: MalformedKind;
  detail: string;
}

/** A text frame's payload, whichever buffer form `ws` delivered it in. */
export function frameText(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

export function decodeMessage(text: string): { ok: true; message: CcMessage } | Rejected {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, kind: 'invalid-json', detail: text.slice(0, 200) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, kind: 'not-an-object', detail: text.slice(0, 200) };
  }
  const type = (value as { TYPE?: unknown }).TYPE;
  if (typeof type !== 'string' && typeof type !== 'number') {
    return { ok: false, kind: 'no-type', detail: text.slice(0, 200) };
  }
  return { ok: true, message: { ...(value as Record<string, unknown>), TYPE: String(type) } };
}

/** Sell and buy are exclusive; anything else (4, 0, both bits) is unknown. */
export function sideFromFlags(flags: number): TradeSide {
  const sell = (flags & TRADE_FLAG_SELL) !== 0;
  const buy = (flags & TRADE_FLAG_BUY) !== 0;
  if (sell && !buy) return 'sell';
  if (buy && !sell) return 'buy';
  return 'unknown';
}

function positive(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

function badTrade(detail: string): Rejected {
  return { ok: false, kind: 'bad-trade', detail };
}

/**
 * A TYPE 0 frame as a Tick. `TS` is seconds; `TSNS`, where the exchange gives it, is the
 * nanosecond part, so the time is `TS * 1000 + floor(TSNS / 1e6)`. The id is `M:ID`: ID is the
 * exchange's trade id, unique per market and pair.
 */
export function parseTrade(
  message: CcMessage,
  pairs: ReadonlyMap<string, MarketSymbol>,
): { ok: true; tick: Tick } | Rejected {
  const {
    M: market,
    FSYM: fsym,
    TSYM: tsym,
    ID: rawId,
    TS: seconds,
    TSNS: nanos,
    P,
    Q,
    F,
  } = message;
  if (typeof fsym !== 'string' || typeof tsym !== 'string') return badTrade('no FSYM/TSYM');
  const symbol = pairs.get(`${fsym}~${tsym}`);
  if (!symbol) return { ok: false, kind: 'unknown-pair', detail: `${fsym}~${tsym}` };
  if (typeof market !== 'string' || market === '') return badTrade('no market M');
  if (!(typeof rawId === 'string' && rawId !== '') && !Number.isFinite(rawId)) {
    return badTrade('no trade ID');
  }
  const id = `${market}:${String(rawId)}`;
  if (id.length > MAX_TRADE_ID_LENGTH)
    return badTrade(`trade id longer than ${MAX_TRADE_ID_LENGTH}`);
  if (typeof seconds !== 'number' || !Number.isInteger(seconds)) return badTrade('TS not seconds');
  let ts: EpochMs = seconds * SECOND_MS;
  if (nanos !== undefined) {
    if (typeof nanos !== 'number' || !Number.isInteger(nanos) || nanos < 0) {
      return badTrade('TSNS not nanoseconds');
    }
    if (nanos >= NANOS_PER_SECOND) return badTrade('TSNS of a second or more');
    ts += Math.floor(nanos / NANOS_PER_MS);
  }
  if (ts < MIN_TICK_TS_MS || ts > MAX_TICK_TS_MS) return badTrade(`TS ${seconds} out of range`);
  if (!positive(P)) return badTrade('P not a positive price');
  if (!positive(Q)) return badTrade('Q not a positive quantity');
  // F is documented as a string ("2"); accept a number too.
  const flags =
    F === undefined ? 0 : typeof F === 'string' || typeof F === 'number' ? Number(F) : NaN;
  if (!Number.isInteger(flags) || flags < 0) return badTrade('F not a flag bitmask');
  return {
    ok: true,
    tick: {
      v: 1,
      symbol,
      ts,
      price: P,
      size: Q,
      side: sideFromFlags(flags),
      id,
      source: 'cryptocompare',
    },
  };
}

/**
 * The ids of one symbol's recent trades, bounded: CryptoCompare re-sends the latest trades on
 * every subscribe, so each reconnect repeats some. Past `capacity` the oldest id is forgotten
 * and trades older than it are then treated as seen (they can no longer be checked, and only
 * re-sent trades are that old). `floorTs` starts that line at a known published time.
 */
export class RecentIds {
  readonly #capacity: number;
  /** id → trade time, in insertion order, so the first entry is the one to forget. */
  readonly #ids = new Map<string, EpochMs>();
  #floorTs: EpochMs;

  constructor(capacity: number, floorTs: EpochMs = Number.NEGATIVE_INFINITY) {
    if (!(capacity >= 1)) throw new RangeError('RecentIds capacity must be >= 1');
    this.#capacity = capacity;
    this.#floorTs = floorTs;
  }

  /** Records the trade and returns true, or returns false for a repeat. */
  add(id: string, ts: EpochMs): boolean {
    if (ts < this.#floorTs || this.#ids.has(id)) return false;
    this.#ids.set(id, ts);
    if (this.#ids.size > this.#capacity) {
      const [oldId, oldTs] = this.#ids.entries().next().value as [string, EpochMs];
      this.#ids.delete(oldId);
      if (oldTs > this.#floorTs) this.#floorTs = oldTs;
    }
    return true;
  }

  get size(): number {
    return this.#ids.size;
  }
}

/** MESSAGE, PARAMETER and INFO of a control or error frame, for logs and errors. */
export function describeMessage(msg: CcMessage): string {
  const parts = [msg['MESSAGE'], msg['PARAMETER'], msg['INFO']].filter(
    (p): p is string => typeof p === 'string' && p !== '',
  );
  return parts.length > 0 ? parts.join(' ') : `TYPE ${msg.TYPE}`;
}
