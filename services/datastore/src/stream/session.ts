/**
 * One /stream client: its requests (one at a time, answered in order), its subscriptions and
 * every send, each checked against the client's unsent bytes so a slow reader is dropped rather
 * than buffered without bound.
 */
import type { BarUpdate, Clock, Interval, MarketSymbol } from '@candlestream/core';
import { errorMessage } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { RawData, WebSocket } from 'ws';
import type { LiveFeed, ReplayFeed } from './feed.js';
import type { SentMark, ServerMessage } from './protocol.js';
import {
  barMessage,
  bufferUpdate,
  markSent,
  parseClientMessage,
  seriesKey,
  shouldSend,
} from './protocol.js';
import { frameText, withTimeout } from './support.js';

/** A symbol check or current-bar fetch slower than this must not stall a subscription. */
const LOOKUP_TIMEOUT_MS = 5_000;
/** Requests of one client waiting behind a slow subscribe; more are refused, not queued. */
const MAX_QUEUED_REQUESTS = 32;
/** Heartbeat pings a client may leave unanswered before it is presumed dead. */
const MAX_MISSED_PONGS = 2;
const CLOSE_INTERNAL_ERROR = 1011;
const CLOSE_TRY_AGAIN_LATER = 1013;

export interface Subscription {
  readonly session: Session;
  readonly key: string;
  /** A replay session's series: its id, and the end of watching it. */
  readonly replay?: { id: string; release: () => void };
  last: SentMark | undefined;
  /** Set while the current bar is being fetched: updates wait here, in arrival order. */
  pending: BarUpdate[] | undefined;
  active: boolean;
}

/** Every subscription of the hub by series, so an update costs O(its subscribers). */
export class SeriesIndex {
  readonly #bySeries = new Map<string, Set<Subscription>>();

  add(sub: Subscription): void {
    let set = this.#bySeries.get(sub.key);
    if (!set) this.#bySeries.set(sub.key, (set = new Set()));
    set.add(sub);
  }

  remove(sub: Subscription): void {
    const set = this.#bySeries.get(sub.key);
    set?.delete(sub);
    if (set?.size === 0) this.#bySeries.delete(sub.key);
  }

  /**
   * Hands `update` to each subscriber of its series (of replay `session`, if given), serialising
   * it once for all of them.
   */
  dispatch(update: BarUpdate, session?: string): void {
    const subs = this.#bySeries.get(seriesKey(update.symbol, update.interval, session));
    if (!subs) return;
    let encoded: Buffer | undefined;
    for (const sub of subs) {
      if (!sub.pending && shouldSend(sub.last, update)) encoded ??= encodeBar(update, session);
      sub.session.deliver(sub, update, encoded);
    }
  }
}

export function encodeBar(update: BarUpdate, session?: string): Buffer {
  return Buffer.from(JSON.stringify(barMessage(update, session)));
}

export interface SessionDeps {
  readonly feed: LiveFeed;
  /** Replay sessions' bars; without it a subscribe naming a session is refused. */
  readonly replays?: ReplayFeed | undefined;
  readonly isKnownSymbol: (symbol: MarketSymbol) => boolean | Promise<boolean>;
  readonly index: SeriesIndex;
  /** Already a child logger of the hub's. */
  readonly log: Logger;
  readonly maxBufferedBytes: number;
  readonly maxFrameBytes: number;
  readonly maxSubscriptions: number;
  readonly onSent: () => void;
  /** Called once when the hub drops this client (`slow`, `heartbeat`). */
  readonly onDropped: (reason: string) => void;
  /** The hub's clock; the lookup timeouts (real waits on storage) run on it. */
  readonly clock: Clock;
}

export class Session {
  readonly id: number;
  readonly #socket: WebSocket;
  readonly #deps: SessionDeps;
  readonly #subs = new Map<string, Subscription>();
  /** Aborted when the client goes, so its pending lookups stop waiting. */
  readonly #aborter = new AbortController();
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #missedPongs = 0;
  #sent = 0;
  #open = true;

  constructor(id: number, socket: WebSocket, deps: SessionDeps) {
    this.id = id;
    this.#socket = socket;
    this.#deps = deps;
  }

  get open(): boolean {
    return this.#open;
  }

  get sent(): number {
    return this.#sent;
  }

  onFrame(data: RawData, isBinary: boolean): void {
    if (!this.#open) return;
    if (isBinary) {
      this.#sendTo({ type: 'error', error: 'binary frames are not supported; send JSON text' });
      return;
    }
    if (this.#queued >= MAX_QUEUED_REQUESTS) {
      this.#sendTo({ type: 'error', error: 'too many requests in flight; wait for answers' });
      return;
    }
    const text = frameText(data);
    this.#queued++;
    this.#queue = this.#queue
      .then(() => this.#handle(text))
      .catch((err: unknown) => {
        this.#deps.log.error('request failed', { client: this.id, error: errorMessage(err) });
      })
      .finally(() => {
        this.#queued--;
      });
  }

  onPong(): void {
    this.#missedPongs = 0;
  }

  /** One heartbeat tick: ping and an app-level heartbeat, or the end of a silent client. */
  heartbeat(time: string): void {
    if (!this.#open) return;
    if (this.#missedPongs >= MAX_MISSED_PONGS) {
      this.#drop('heartbeat', { missedPongs: this.#missedPongs });
      this.#socket.terminate();
      return;
    }
    this.#missedPongs++;
    this.#socket.ping();
    this.#sendTo({ type: 'heartbeat', time });
  }

  /** Closes the socket with `code` after what is already queued; the hub hears of it on 'close'. */
  close(code: number, reason: string): void {
    this.detach();
    this.#socket.close(code, reason);
  }

  /** Stops all traffic to this client and removes its subscriptions; idempotent. */
  detach(): void {
    if (!this.#open) return;
    this.#open = false;
    for (const sub of [...this.#subs.values()]) this.#remove(sub);
    this.#aborter.abort();
  }

  /** Whether any interval of `symbol` is subscribed. */
  subscribesTo(symbol: MarketSymbol): boolean {
    for (const sub of this.#subs.values()) {
      if (sub.active && sub.key.startsWith(`${symbol} `)) return true;
    }
    return false;
  }

  /** Whether any series of replay `session` is subscribed. */
  watchesReplay(session: string): boolean {
    for (const sub of this.#subs.values())
      if (sub.active && sub.replay?.id === session) return true;
    return false;
  }

  /** Sends a message outside any subscription's ordering (the hub's `history`). */
  announce(message: ServerMessage): void {
    this.#sendTo(message);
  }

  /** `announce` of a message already serialised (one status to many clients). */
  announceFrame(frame: Buffer): void {
    this.#sendFrame(frame);
  }

  /** Sends `update` on one subscription if the ordering rule allows; buffers while pending. */
  deliver(sub: Subscription, update: BarUpdate, encoded?: Buffer): void {
    if (!sub.active) return;
    if (sub.pending) {
      bufferUpdate(sub.pending, update);
      return;
    }
    if (!shouldSend(sub.last, update)) return;
    if (this.#sendFrame(encoded ?? encodeBar(update, sub.replay?.id))) {
      sub.last = markSent(sub.last, update);
    }
  }

  async #handle(text: string): Promise<void> {
    if (!this.#open) return;
    const decoded = parseClientMessage(text, this.#deps.maxFrameBytes);
    if (!decoded.ok) {
      this.#deps.log.debug('bad request', { client: this.id, reason: decoded.reason });
      this.#sendTo({ type: 'error', error: decoded.reason });
      return;
    }
    const request = decoded.value;
    if (request.type === 'ping') {
      this.#sendTo({ type: 'pong' });
    } else if (request.type === 'subscribe') {
      if (request.session === undefined) await this.#subscribe(request.symbol, request.interval);
      else this.#subscribeReplay(request.session, request.symbol, request.interval);
    } else {
      const { symbol, interval, session } = request;
      const sub = this.#subs.get(seriesKey(symbol, interval, session));
      if (sub) this.#remove(sub);
      this.#sendTo({
        type: 'unsubscribed',
        symbol,
        interval,
        ...(session === undefined ? {} : { session }),
      });
    }
  }

  /**
   * A replay session's series: the bars built so far at once, then every update, and the
   * session's status now and whenever it changes (the hub's `replay` messages). Synchronous
   * from the check to the first bars, so no update can fall between them.
   */
  #subscribeReplay(session: string, symbol: MarketSymbol, interval: Interval): void {
    const key = seriesKey(symbol, interval, session);
    const echo = { symbol, interval, session };
    if (this.#subs.has(key)) {
      this.#sendTo({ type: 'subscribed', ...echo });
      return;
    }
    const replays = this.#deps.replays;
    const refusal = replays
      ? replays.refusal(session, symbol)
      : 'this server does not host replay sessions';
    if (refusal !== undefined || !replays) {
      this.#sendTo({ type: 'error', error: refusal ?? 'no replays', ...echo });
      return;
    }
    if (this.#subs.size >= this.#deps.maxSubscriptions) {
      const error = `at most ${this.#deps.maxSubscriptions} subscriptions per connection`;
      this.#sendTo({ type: 'error', error, ...echo });
      return;
    }
    const sub: Subscription = {
      session: this,
      key,
      replay: { id: session, release: replays.watch(session) },
      last: undefined,
      pending: undefined,
      active: true,
    };
    this.#subs.set(key, sub);
    this.#deps.index.add(sub);
    this.#sendTo({ type: 'subscribed', ...echo });
    const status = replays.status(session);
    if (status) this.#sendTo({ type: 'replay', session, status });
    for (const update of replays.bars(session, symbol, interval)) this.deliver(sub, update);
  }

  async #subscribe(symbol: MarketSymbol, interval: Interval): Promise<void> {
    const key = seriesKey(symbol, interval);
    if (this.#subs.has(key)) {
      this.#sendTo({ type: 'subscribed', symbol, interval });
      return;
    }
    if (this.#subs.size >= this.#deps.maxSubscriptions) {
      const error = `at most ${this.#deps.maxSubscriptions} subscriptions per connection`;
      this.#sendTo({ type: 'error', error, symbol, interval });
      return;
    }
    // Registered before any await: updates from now on are buffered, none lost.
    const sub: Subscription = { session: this, key, last: undefined, pending: [], active: true };
    this.#subs.set(key, sub);
    this.#deps.index.add(sub);
    const { log } = this.#deps;
    const signal = this.#aborter.signal;
    let known: boolean;
    try {
      const check = Promise.resolve(this.#deps.isKnownSymbol(symbol));
      known = await withTimeout(check, LOOKUP_TIMEOUT_MS, signal, 'symbol check', this.#deps.clock);
    } catch (err) {
      this.#remove(sub);
      if (!this.#open) return;
      log.warn('symbol check failed', { client: this.id, symbol, error: errorMessage(err) });
      const error = `could not check symbol ${symbol}; try again`;
      this.#sendTo({ type: 'error', error, symbol, interval });
      return;
    }
    if (!sub.active) return;
    if (!known) {
      this.#remove(sub);
      this.#sendTo({ type: 'error', error: `unknown symbol ${symbol}`, symbol, interval });
      return;
    }
    this.#sendTo({ type: 'subscribed', symbol, interval });
    let current: BarUpdate | undefined;
    try {
      const fetch = this.#deps.feed.current(symbol, interval);
      current = await withTimeout(
        fetch,
        LOOKUP_TIMEOUT_MS,
        signal,
        'current bar',
        this.#deps.clock,
      );
    } catch (err) {
      // The subscription stands without it: the next update brings the bar.
      if (sub.active) log.warn('no current bar', { symbol, interval, error: errorMessage(err) });
    }
    const buffered = sub.pending ?? [];
    sub.pending = undefined;
    if (current) this.deliver(sub, current);
    for (const update of buffered) this.deliver(sub, update);
  }

  #remove(sub: Subscription): void {
    if (sub.active) sub.replay?.release();
    sub.active = false;
    sub.pending = undefined;
    if (this.#subs.get(sub.key) === sub) this.#subs.delete(sub.key);
    this.#deps.index.remove(sub);
  }

  #drop(reason: string, fields: Record<string, unknown>): void {
    if (!this.#open) return;
    this.#deps.log.warn(`client dropped: ${reason}`, { client: this.id, ...fields });
    this.#deps.onDropped(reason);
    this.detach();
  }

  #sendTo(message: ServerMessage): boolean {
    return this.#sendFrame(JSON.stringify(message));
  }

  #sendFrame(data: string | Buffer): boolean {
    const socket = this.#socket;
    if (!this.#open || socket.readyState !== socket.OPEN) return false;
    const { maxBufferedBytes } = this.#deps;
    if (socket.bufferedAmount > maxBufferedBytes) {
      this.#drop('slow', { bufferedBytes: socket.bufferedAmount, maxBufferedBytes });
      // Queued behind what is buffered; ws destroys the socket if the close is not answered.
      socket.close(CLOSE_TRY_AGAIN_LATER, 'too slow');
      return false;
    }
    try {
      socket.send(data, { binary: false });
    } catch (err) {
      this.#deps.log.error('send failed', { client: this.id, error: errorMessage(err) });
      this.detach();
      socket.close(CLOSE_INTERNAL_ERROR, 'internal error');
      return false;
    }
    this.#sent++;
    this.#deps.onSent();
    return true;
  }
}
