/**
 * The one /stream WebSocket of a datafeed (docs/API.md, `/stream`): opened on the first
 * subscription, every subscription sent again after a reconnect, exponential backoff with jitter
 * between attempts, and a watchdog that replaces a socket gone silent (a half-open TCP connection
 * raises no close event for minutes).
 */
import type { Clock, Interval, TimerHandle } from '@candlestream/core';
import {
  backoffDelayMs,
  errorMessage,
  isInterval,
  parseInstant,
  parseResolution,
} from '@candlestream/core';
import type {
  ConnectionState,
  HistoryUpdate,
  LogFunction,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

/** WebSocket.OPEN; the constant is not part of WebSocketLike. */
const READY_STATE_OPEN = 1;
const CLOSE_NORMAL = 1000;
/** An application close code (4000-4999): we gave up on a silent socket. */
const CLOSE_STALE = 4000;

export interface StreamBar {
  symbol: string;
  interval: Interval;
  bar: { time: number; open: number; high: number; low: number; close: number; volume: number };
}

export interface BarStreamOptions {
  url: string;
  WebSocket: WebSocketConstructor;
  reconnect: { initialDelayMs: number; maxDelayMs: number; jitter: number };
  /** 0 turns the watchdog off. */
  staleAfterMs: number;
  onBar: (update: StreamBar) => void;
  /** A backfill of a symbol ended: its stored history changed over [from, to). */
  onHistory: (update: HistoryUpdate) => void;
  /** The socket is open again after being lost while subscribed: bars may have been missed. */
  onResync: () => void;
  onState: (state: ConnectionState) => void;
  log: LogFunction;
  /** The reconnect delays and the watchdog run on it. */
  clock: Clock;
}

/** Interval names (`1m`) and TradingView resolutions (`1`, `1D`), as the server accepts both. */
export function toInterval(value: unknown): Interval | undefined {
  if (isInterval(value)) return value;
  if (typeof value !== 'string') return undefined;
  try {
    return parseResolution(value);
  } catch {
    return undefined;
  }
}

export function seriesKey(symbol: string, interval: Interval): string {
  return `${symbol} ${interval}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A `{"type":"bar"}` message as a StreamBar, or undefined when any field is off. */
export function parseBarMessage(message: Record<string, unknown>): StreamBar | undefined {
  const { symbol, bar } = message;
  const interval = toInterval(message['interval']);
  if (typeof symbol !== 'string' || !interval || !isRecord(bar)) return undefined;
  const time = typeof bar['time'] === 'string' ? parseInstant(bar['time']) : bar['time'];
  const values = [time, bar['open'], bar['high'], bar['low'], bar['close'], bar['volume']];
  if (!values.every((v) => typeof v === 'number' && Number.isFinite(v))) return undefined;
  const [t, open, high, low, close, volume] = values as number[];
  return {
    symbol,
    interval,
    bar: { time: t!, open: open!, high: high!, low: low!, close: close!, volume: volume! },
  };
}

/**
 * A `{"type":"history"}` message (docs/API.md, `/stream`: a backfill of `symbol` ended and stored
 * [from, to)) with its times as epoch ms, or undefined when any field is off.
 */
export function parseHistoryMessage(message: Record<string, unknown>): HistoryUpdate | undefined {
  const { symbol, backfill } = message;
  if (typeof symbol !== 'string' || !isRecord(backfill)) return undefined;
  const { id, status } = backfill;
  if (typeof id !== 'string' || typeof status !== 'string') return undefined;
  const instant = (value: unknown): number | undefined => {
    if (typeof value !== 'string') return undefined;
    try {
      return parseInstant(value);
    } catch {
      return undefined;
    }
  };
  const from = instant(message['from']);
  const to = instant(message['to']);
  if (from === undefined || to === undefined) return undefined;
  return { symbol, backfill: { id, status }, from, to };
}

export class BarStream {
  readonly #options: BarStreamOptions;
  readonly #series = new Map<string, { symbol: string; interval: Interval }>();
  #socket: WebSocketLike | undefined;
  #state: ConnectionState = 'closed';
  /** Failed attempts since the last open; the backoff exponent. */
  #attempt = 0;
  #retryTimer: TimerHandle | undefined;
  #staleTimer: TimerHandle | undefined;
  /** Lost while subscribed: the next open must tell listeners to refetch. */
  #missed = false;
  #closed = false;

  constructor(options: BarStreamOptions) {
    this.#options = options;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Starts following a series (once per series; the caller counts listeners). */
  watch(symbol: string, interval: Interval): void {
    const key = seriesKey(symbol, interval);
    if (this.#closed || this.#series.has(key)) return;
    this.#series.set(key, { symbol, interval });
    if (this.#isOpen()) this.#send({ type: 'subscribe', symbol, interval });
    else if (!this.#socket && this.#retryTimer === undefined) this.#connect();
    // Otherwise a socket is connecting or a retry is due: the open sends every series.
  }

  unwatch(symbol: string, interval: Interval): void {
    if (!this.#series.delete(seriesKey(symbol, interval))) return;
    if (this.#isOpen()) this.#send({ type: 'unsubscribe', symbol, interval });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.clock.clearTimeout(this.#retryTimer);
    this.#options.clock.clearTimeout(this.#staleTimer);
    this.#discardSocket(CLOSE_NORMAL, 'datafeed destroyed');
    this.#series.clear();
    this.#setState('closed');
  }

  #isOpen(): boolean {
    return this.#socket?.readyState === READY_STATE_OPEN;
  }

  #setState(state: ConnectionState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#options.onState(state);
  }

  #send(message: Record<string, unknown>): void {
    try {
      this.#socket?.send(JSON.stringify(message));
    } catch (err) {
      this.#options.log('stream send failed', { error: errorMessage(err) });
    }
  }

  #connect(): void {
    this.#retryTimer = undefined;
    this.#setState(this.#missed ? 'reconnecting' : 'connecting');
    let socket: WebSocketLike;
    try {
      socket = new this.#options.WebSocket(this.#options.url);
    } catch (err) {
      this.#options.log('cannot open the stream', { error: errorMessage(err) });
      this.#lost();
      return;
    }
    this.#socket = socket;
    socket.onopen = () => this.#opened();
    socket.onmessage = (event) => {
      this.#armWatchdog();
      this.#receive(event.data);
    };
    socket.onclose = (event) => {
      this.#options.log('stream closed', { code: event.code, reason: event.reason });
      this.#socket = undefined;
      this.#lost();
    };
    // A close event always follows an error, with a code that says more.
    socket.onerror = () => undefined;
    // A connect that hangs is silence too.
    this.#armWatchdog();
  }

  #opened(): void {
    this.#attempt = 0;
    this.#setState('open');
    for (const { symbol, interval } of this.#series.values()) {
      this.#send({ type: 'subscribe', symbol, interval });
    }
    if (this.#missed) {
      this.#missed = false;
      this.#options.onResync();
    }
  }

  /** The socket is gone (closed, failed or given up on): retry while anything is subscribed. */
  #lost(): void {
    this.#options.clock.clearTimeout(this.#staleTimer);
    if (this.#closed) return;
    if (this.#series.size === 0) {
      // Nothing to follow: the next watch() opens a socket again.
      this.#setState('closed');
      return;
    }
    this.#missed = true;
    this.#setState('reconnecting');
    const { initialDelayMs, maxDelayMs, jitter } = this.#options.reconnect;
    const delayMs = backoffDelayMs(this.#attempt++, {
      initialDelayMs,
      maxDelayMs,
      multiplier: 2,
      jitter,
    });
    this.#retryTimer = this.#options.clock.setTimeout(() => this.#connect(), delayMs);
  }

  #armWatchdog(): void {
    this.#options.clock.clearTimeout(this.#staleTimer);
    const silenceMs = this.#options.staleAfterMs;
    if (silenceMs <= 0) return;
    this.#staleTimer = this.#options.clock.setTimeout(() => {
      this.#options.log('stream silent, reconnecting', { silenceMs });
      this.#discardSocket(CLOSE_STALE, 'silent');
      this.#lost();
    }, silenceMs);
  }

  /** Closes a socket we no longer want, so none of its events reach us again. */
  #discardSocket(code: number, reason: string): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#socket = undefined;
    socket.onopen = null;
    socket.onmessage = null;
    socket.onclose = null;
    socket.onerror = null;
    try {
      socket.close(code, reason);
    } catch (err) {
      this.#options.log('stream close failed', { error: errorMessage(err) });
    }
  }

  #receive(data: unknown): void {
    if (typeof data !== 'string') return; // the server sends text frames only
    let message: unknown;
    try {
      message = JSON.parse(data);
    } catch {
      this.#options.log('stream sent a frame that is not JSON');
      return;
    }
    if (!isRecord(message)) return;
    if (message['type'] === 'bar') {
      const update = parseBarMessage(message);
      if (update) this.#options.onBar(update);
      else this.#options.log('stream sent a malformed bar', { message });
    } else if (message['type'] === 'history') {
      const update = parseHistoryMessage(message);
      if (update) this.#options.onHistory(update);
      else this.#options.log('stream sent a malformed history message', { message });
    } else if (message['type'] === 'error') {
      const { error, symbol, interval } = message;
      this.#options.log('stream error', { error, symbol, interval });
    }
    // subscribed, unsubscribed, heartbeat, pong: proof of life only (the watchdog was re-armed).
    // Any other type is a newer server's: ignored, so an older page keeps working.
  }
}
