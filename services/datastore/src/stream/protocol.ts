/**
 * The /stream wire protocol: what clients may send, what the hub answers, and the ordering rule of
 * a subscription (forming bars never go back; finals once each, ascending). Pure; the hub does the
 * I/O.
 */
import type {
  BackfillStatus,
  Bar,
  BarUpdate,
  Decoded,
  EpochMs,
  Interval,
  MarketSymbol,
} from '@candlestream/core';
import {
  AppError,
  errorMessage,
  parseIntervalOrResolution,
  parseJsonMessage,
  parseSymbol,
  REPLAY_SESSION_PATTERN,
  toIso,
} from '@candlestream/core';
import type { ReplayView } from '../replays.js';

/** `session`: the bars of a replay session's trades instead of the live ones (docs/REPLAY.md). */
export type ClientRequest =
  | { type: 'subscribe'; symbol: MarketSymbol; interval: Interval; session?: string }
  | { type: 'unsubscribe'; symbol: MarketSymbol; interval: Interval; session?: string }
  | { type: 'ping' };

const REQUEST_TYPES = ['subscribe', 'unsubscribe', 'ping'] as const;

/** What went wrong with a request; `symbol`/`interval` echo it when they could be parsed. */
export interface ProtocolError {
  type: 'error';
  error: string;
  symbol?: string;
  interval?: string;
  session?: string;
}

export type ServerMessage =
  | {
      type: 'subscribed' | 'unsubscribed';
      symbol: MarketSymbol;
      interval: Interval;
      session?: string;
    }
  | { type: 'pong' }
  | { type: 'heartbeat'; time: string }
  | ProtocolError
  | BarMessage
  | HistoryMessage
  | ReplayMessage;

/** A replay session's status, to its subscribers whenever the simulator reports it. */
export interface ReplayMessage {
  type: 'replay';
  session: string;
  status: ReplayView;
}

/**
 * A backfill of `symbol` stored [from, to) (ISO): to every client subscribed to any interval of
 * it, once, so it reads that range again. Backfilled bars themselves never arrive as `bar`
 * messages: they are older than what the subscription was sent.
 */
export interface HistoryMessage {
  type: 'history';
  symbol: MarketSymbol;
  backfill: { id: string; status: BackfillStatus };
  from: string;
  to: string;
}

export interface BarMessage {
  type: 'bar';
  /** Set on a replay session's bars. */
  session?: string;
  symbol: MarketSymbol;
  interval: Interval;
  bar: WireBar;
  final: boolean;
}

/** A bar as the API writes it, /ohlcv and /stream alike: ISO open time, then OHLCV. */
export interface WireBar {
  time: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

export function wireBar(bar: Bar): WireBar {
  return {
    time: toIso(bar.time),
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
    volume: bar.volume,
  };
}

/**
 * The dispatch key of a series; one string so a Map lookup is enough. A replay session's series
 * starts with `@`, which no symbol does.
 */
export function seriesKey(symbol: MarketSymbol, interval: Interval, session?: string): string {
  return session === undefined ? `${symbol} ${interval}` : `@${session} ${symbol} ${interval}`;
}

/** Interval names first, then TradingView resolutions (`1`, `60`, `1D`…), as /udf accepts. */
export function parseStreamInterval(input: unknown): Interval {
  if (typeof input !== 'string')
    throw new AppError('INVALID_ARGUMENT', 'interval must be a string');
  return parseIntervalOrResolution(input);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Decodes one text frame; every refusal says what is wrong in words a client author can act on. */
export function parseClientMessage(text: string, maxBytes: number): Decoded<ClientRequest> {
  const parsed = parseJsonMessage(text, maxBytes);
  if (!parsed.ok) return parsed;
  const message = parsed.value;
  if (!isRecord(message)) return { ok: false, reason: 'message must be a JSON object' };
  const type = message['type'];
  if (type === 'ping') return { ok: true, value: { type } };
  if (type !== 'subscribe' && type !== 'unsubscribe') {
    const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 32)) : 'missing';
    return {
      ok: false,
      reason: `type ${shown} is not one of ${REQUEST_TYPES.join(', ')}`,
    };
  }
  const symbolInput = message['symbol'];
  if (typeof symbolInput !== 'string') return { ok: false, reason: 'symbol must be a string' };
  const session = message['session'];
  if (
    session !== undefined &&
    (typeof session !== 'string' || !REPLAY_SESSION_PATTERN.test(session))
  ) {
    return { ok: false, reason: 'session must be a replay session id (POST /replays answers one)' };
  }
  try {
    const symbol = parseSymbol(symbolInput);
    const interval = parseStreamInterval(message['interval']);
    return {
      ok: true,
      value: { type, symbol, interval, ...(session === undefined ? {} : { session }) },
    };
  } catch (err) {
    return { ok: false, reason: errorMessage(err) };
  }
}

export function barMessage(update: BarUpdate, session?: string): BarMessage {
  const { bar } = update;
  return {
    type: 'bar',
    ...(session === undefined ? {} : { session }),
    symbol: update.symbol,
    interval: update.interval,
    bar: wireBar(bar),
    final: update.final,
  };
}

/** Bars a subscription was sent as forming and may still owe a final for; older ones are dropped. */
const MAX_OPEN_BARS = 16;

/** What one subscription has been sent, enough to decide what may follow. */
export interface SentMark {
  /** Open time of the newest bar sent, forming or final. */
  time: EpochMs;
  /** Whether that newest bar was last sent as final. */
  final: boolean;
  /** Open time of the newest final bar sent; finals go out in this order. */
  closed: EpochMs | undefined;
  /** Open times of bars sent forming but not yet final, ascending, all after `closed`. */
  open: readonly EpochMs[];
}

/**
 * Whether `update` may follow `last` on one subscription.
 *
 * Forming bars never go back: one older than the newest bar sent, or a forming version of a bar
 * already sent as final, is dropped; a same-time update is sent (the forming bar moved).
 * Closed bars go out once each, in order: a minute stays open for the allowed lateness after it
 * ends, so its final arrives after the next minute's forming bar, and is still sent. A final is
 * sent when it is not older than the newest final sent (same time: a correction by late trades),
 * and is that bar, or not older than the newest bar sent, or a bar this subscription was sent
 * forming. A final of an older bar the subscription never saw (it subscribed later) is not sent.
 */
export function shouldSend(last: SentMark | undefined, update: BarUpdate): boolean {
  if (!last) return true;
  const time = update.bar.time;
  if (!update.final) return time > last.time || (time === last.time && !last.final);
  if (last.closed !== undefined && time < last.closed) return false;
  return time >= last.time || time === last.closed || last.open.includes(time);
}

/** The mark after `update` was sent on a subscription marked `last`. */
export function markSent(last: SentMark | undefined, update: BarUpdate): SentMark {
  const time = update.bar.time;
  if (update.final) {
    const newest = !last || time >= last.time;
    return {
      time: newest ? time : last.time,
      final: newest ? true : last.final,
      closed: time,
      open: last ? last.open.filter((t) => t > time) : [],
    };
  }
  const open = last ? last.open.filter((t) => t !== time) : [];
  open.push(time);
  return {
    time,
    final: false,
    closed: last?.closed,
    open: open.length > MAX_OPEN_BARS ? open.slice(-MAX_OPEN_BARS) : open,
  };
}

/**
 * Appends an update to a subscription's pending buffer (while its current bar is being fetched),
 * replacing the previous entry when that was a forming version of the same bar: only the newest
 * state of a forming bar matters, so a slow fetch cannot grow the buffer with every tick.
 */
export function bufferUpdate(pending: BarUpdate[], update: BarUpdate): void {
  const previous = pending.at(-1);
  if (previous && !previous.final && previous.bar.time === update.bar.time) {
    pending[pending.length - 1] = update;
  } else {
    pending.push(update);
  }
}
