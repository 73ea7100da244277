/**
 * The /stream wire protocol: what clients may send, what the hub answers, and the ordering rule
 * that keeps a subscription from ever going back in time. Pure; the hub does the I/O.
 */
import type { BarUpdate, Decoded, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import {
  AppError,
  INTERVALS,
  RESOLUTIONS,
  errorMessage,
  parseInterval,
  parseJsonMessage,
  parseResolution,
  parseSymbol,
  toIso,
} from '@candlestream/core';

export type ClientRequest =
  | { type: 'subscribe'; symbol: MarketSymbol; interval: Interval }
  | { type: 'unsubscribe'; symbol: MarketSymbol; interval: Interval }
  | { type: 'ping' };

const REQUEST_TYPES = ['subscribe', 'unsubscribe', 'ping'] as const;

/** What went wrong with a request; `symbol`/`interval` echo it when they could be parsed. */
export interface ProtocolError {
  type: 'error';
  error: string;
  symbol?: string;
  interval?: string;
}

export type ServerMessage =
  | { type: 'subscribed' | 'unsubscribed'; symbol: MarketSymbol; interval: Interval }
  | { type: 'pong' }
  | { type: 'heartbeat'; time: string }
  | ProtocolError
  | BarMessage;

export interface BarMessage {
  type: 'bar';
  symbol: MarketSymbol;
  interval: Interval;
  bar: { time: string; open: number; high: number; low: number; close: number; volume: number };
  final: boolean;
}

/** The dispatch key of a series; one string so a Map lookup is enough. */
export function seriesKey(symbol: MarketSymbol, interval: Interval): string {
  return `${symbol} ${interval}`;
}

/** Interval names first, then TradingView resolutions (`1`, `60`, `1D`…), as /udf accepts. */
export function parseStreamInterval(input: unknown): Interval {
  if (typeof input !== 'string')
    throw new AppError('INVALID_ARGUMENT', 'interval must be a string');
  try {
    return parseInterval(input);
  } catch {
    try {
      return parseResolution(input);
    } catch {
      throw new AppError(
        'INVALID_ARGUMENT',
        `interval ${JSON.stringify(input.slice(0, 16))} is not one of ${INTERVALS.join(', ')} ` +
          `or a TradingView resolution (${RESOLUTIONS.join(', ')})`,
      );
    }
  }
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
  try {
    const symbol = parseSymbol(symbolInput);
    const interval = parseStreamInterval(message['interval']);
    return { ok: true, value: { type, symbol, interval } };
  } catch (err) {
    return { ok: false, reason: errorMessage(err) };
  }
}

export function barMessage(update: BarUpdate): BarMessage {
  const { bar } = update;
  return {
    type: 'bar',
    symbol: update.symbol,
    interval: update.interval,
    bar: {
      time: toIso(bar.time),
      open: bar.open,
      high: bar.high,
      low: bar.low,
      close: bar.close,
      volume: bar.volume,
    },
    final: update.final,
  };
}

/** The newest bar a subscription has been sent. */
export interface SentMark {
  time: EpochMs;
  final: boolean;
}

/**
 * Whether `update` may follow `last` on one subscription: never an older bar, and never a forming
 * version of a bar already sent as final. A same-time update is sent (the forming bar moved, or a
 * final bar was corrected by late trades).
 */
export function shouldSend(last: SentMark | undefined, update: BarUpdate): boolean {
  if (!last) return true;
  if (update.bar.time !== last.time) return update.bar.time > last.time;
  return update.final || !last.final;
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
