/**
 * Live trades from the CryptoCompare streamer (WebSocket API v2): connect with `?api_key=`,
 * answer the welcome (TYPE 20) with `SubAdd` of `0~<exchange>~<BASE>~<QUOTE>`, read TYPE 0
 * trades. Reconnects with backoff (from 5 s: the streamer refuses clients that open more than
 * ~60 sockets a minute), watches for silence (the server sends TYPE 999 heartbeats every 30 to
 * 60 s), reports a subscription the server refuses (TYPE 500 INVALID_SUB naming it), drops the
 * trades it re-sends on every subscribe and fills the whole minutes missed while away from REST
 * minute history.
 *
 * Conversions: the trade channel carries one exchange's own trades of the exact pair named, so
 * there is nothing to convert and nothing to turn off (REST history, which would convert, is
 * asked with `tryConversion=false`). A pair the exchange does not list is refused with
 * INVALID_SUB rather than served through another pair.
 */
import type {
  BackoffOptions,
  Clock,
  EpochMs,
  MarketSymbol,
  Tick,
  TimerHandle,
} from '@candlestream/core';
import {
  AppError,
  DAY_MS,
  backoffDelayMs,
  invalidArgument,
  sleep,
  systemClock,
} from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { RawData } from 'ws';
import { WebSocket } from 'ws';
import { GapFiller } from './cryptocompare-gapfill.js';
import type { CcMessage, MalformedKind } from './cryptocompare-protocol.js';
import {
  CC_TYPE,
  decodeMessage,
  describeMessage,
  frameText,
  pairKey,
  parseTrade,
  tradeSubscription,
} from './cryptocompare-protocol.js';
import { TradeQueue } from './cryptocompare-queue.js';
import type { FetchFn, RetryOptions } from './cryptocompare-rest.js';
import { DEFAULT_EXCHANGE, DEFAULT_REST_URL, fetchMinuteCandles } from './cryptocompare-rest.js';
import type { SourceRunOptions, SourceStatus, TradeSource } from './source.js';

export const DEFAULT_WS_URL = 'wss://streamer.cryptocompare.com/v2';
/** The server sends a heartbeat every 30 to 60 s; 90 s of silence is past any healthy gap. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 90_000;
/** A connection that stayed up this long was healthy: the next failure backs off from scratch. */
export const DEFAULT_HEALTHY_AFTER_MS = 60_000;
/** No reconnect sooner than this; the vendor asks for at least 5 s between connects. */
export const MIN_RECONNECT_DELAY_MS = 5_000;
/**
 * Reconnect waits: the first 5 to 10 s (jitter spreads clients dropped together), doubling to
 * 30 to 60 s, never past the vendor's 60 connects a minute however long the outage.
 */
export const DEFAULT_RECONNECT_BACKOFF: BackoffOptions = {
  initialDelayMs: 10_000,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 0.5,
};
export const DEFAULT_MAX_QUEUED_TRADES = 10_000;
/** CryptoCompare re-sends the latest 20 trades per subscription; this is ample. */
export const DEFAULT_RECENT_IDS_PER_SYMBOL = 1_000;
/** Minute history is kept about 7 days; an older gap is filled for its newest 7 days only. */
export const DEFAULT_MAX_GAP_FILL_MS = 7 * DAY_MS;

export interface CryptoCompareWsOptions {
  apiKey: string;
  symbols: readonly MarketSymbol[];
  /** Exchange whose trades to stream; default Coinbase (CCCAGG has no trade channel). */
  exchange?: string;
  wsUrl?: string;
  restUrl?: string;
  logger: Logger;
  clock?: Clock;
  heartbeatTimeoutMs?: number;
  healthyAfterMs?: number;
  /** Reconnect backoff; default DEFAULT_RECONNECT_BACKOFF. */
  backoff?: BackoffOptions;
  /** Floor under every reconnect wait, whatever `backoff` says; default 5 s (tests use less). */
  minReconnectDelayMs?: number;
  random?: () => number;
  maxQueuedTrades?: number;
  recentIdsPerSymbol?: number;
  maxGapFillMs?: number;
  /** For the gap-fill REST calls. */
  fetch?: FetchFn;
  requestTimeoutMs?: number;
  gapFillRetry?: Omit<RetryOptions, 'signal' | 'logger'>;
}

export interface WsSourceStats {
  connections: number;
  duplicates: number;
  malformed: Partial<Record<MalformedKind, number>>;
  /** Live trades dropped because the consumer fell behind. */
  dropped: number;
  gapFills: number;
  gapFillFailures: number;
  backfilledTrades: number;
}

export interface CryptoCompareWsSource extends TradeSource {
  readonly kind: 'cryptocompare';
  /** Counters over every run of this source. */
  stats(): WsSourceStats;
}

type Settings = Required<
  Omit<CryptoCompareWsOptions, 'fetch' | 'gapFillRetry' | 'requestTimeoutMs'>
> &
  Pick<CryptoCompareWsOptions, 'fetch' | 'gapFillRetry' | 'requestTimeoutMs'>;

export function createCryptoCompareWsSource(
  options: CryptoCompareWsOptions,
): CryptoCompareWsSource {
  if (options.apiKey === '') throw invalidArgument('CryptoCompare API key is empty');
  if (options.symbols.length === 0) throw invalidArgument('no symbols to stream');
  // Field by field, so an option passed as undefined still gets its default.
  const settings: Settings = {
    apiKey: options.apiKey,
    symbols: options.symbols,
    exchange: options.exchange ?? DEFAULT_EXCHANGE,
    wsUrl: options.wsUrl ?? DEFAULT_WS_URL,
    restUrl: options.restUrl ?? DEFAULT_REST_URL,
    logger: options.logger.child({ component: 'cryptocompare-ws' }),
    clock: options.clock ?? systemClock,
    heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
    healthyAfterMs: options.healthyAfterMs ?? DEFAULT_HEALTHY_AFTER_MS,
    backoff: options.backoff ?? DEFAULT_RECONNECT_BACKOFF,
    minReconnectDelayMs: options.minReconnectDelayMs ?? MIN_RECONNECT_DELAY_MS,
    random: options.random ?? Math.random,
    maxQueuedTrades: options.maxQueuedTrades ?? DEFAULT_MAX_QUEUED_TRADES,
    recentIdsPerSymbol: options.recentIdsPerSymbol ?? DEFAULT_RECENT_IDS_PER_SYMBOL,
    maxGapFillMs: options.maxGapFillMs ?? DEFAULT_MAX_GAP_FILL_MS,
    fetch: options.fetch,
    requestTimeoutMs: options.requestTimeoutMs,
    gapFillRetry: options.gapFillRetry,
  };
  if (!URL.canParse(settings.wsUrl) || !/^wss?:$/.test(new URL(settings.wsUrl).protocol)) {
    throw invalidArgument(
      `CryptoCompare WebSocket URL ${JSON.stringify(settings.wsUrl)} is invalid`,
    );
  }
  const stats: WsSourceStats = {
    connections: 0,
    duplicates: 0,
    malformed: {},
    dropped: 0,
    gapFills: 0,
    gapFillFailures: 0,
    backfilledTrades: 0,
  };

  async function* trades(run: SourceRunOptions): AsyncGenerator<Tick> {
    const live = new LiveRun(settings, run, stats);
    live.start();
    try {
      for (;;) {
        const tick = await live.next();
        if (!tick) return;
        yield tick;
      }
    } finally {
      await live.stop();
    }
  }

  return {
    kind: 'cryptocompare',
    trades,
    stats: () => ({ ...stats, malformed: { ...stats.malformed } }),
  };
}

/** The wait before reconnect number `attempt` (0 = first): the backoff, never below the floor. */
export function reconnectDelayMs(
  attempt: number,
  backoff: BackoffOptions = DEFAULT_RECONNECT_BACKOFF,
  minDelayMs: number = MIN_RECONNECT_DELAY_MS,
  random: () => number = Math.random,
): number {
  return Math.max(minDelayMs, backoffDelayMs(attempt, backoff, random));
}

/** One connection's fate, filled in by its handlers. */
interface Connection {
  socket: WebSocket;
  reason: string;
  fatal: AppError | undefined;
  healthySince: EpochMs | undefined;
}

interface ConnectionEnd {
  reason: string;
  fatal: AppError | undefined;
  upForMs: number;
}

/** One `trades()` call: a connect loop feeding a queue that the generator drains. */
class LiveRun {
  readonly #s: Settings;
  readonly #run: SourceRunOptions;
  readonly #stats: WsSourceStats;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  readonly #queue: TradeQueue;
  readonly #byPair = new Map<string, MarketSymbol>();
  readonly #gaps: GapFiller;
  readonly #subs: string[];
  /** Subscription → symbol, to name the pair of a refused one. */
  readonly #symbolBySub = new Map<string, MarketSymbol>();
  /** Our subscriptions the server refused, with why; cleared by a later SUBSCRIBECOMPLETE. */
  readonly #refused = new Map<string, string>();
  #loop: Promise<void> = Promise.resolve();
  #finished = false;
  #fatal: AppError | undefined;
  #wake: (() => void) | undefined;
  #connected = false;

  constructor(settings: Settings, run: SourceRunOptions, stats: WsSourceStats) {
    this.#s = settings;
    this.#run = run;
    this.#stats = stats;
    this.#log = settings.logger;
    this.#queue = new TradeQueue(settings.maxQueuedTrades, settings.logger, (n) => {
      stats.dropped += n;
    });
    this.#subs = settings.symbols.map((s) => tradeSubscription(settings.exchange, s));
    for (const symbol of settings.symbols) {
      this.#byPair.set(pairKey(symbol), symbol);
      this.#symbolBySub.set(tradeSubscription(settings.exchange, symbol), symbol);
    }
    this.#gaps = new GapFiller({
      symbols: settings.symbols,
      resumeFrom: run.resumeFrom,
      exchange: settings.exchange,
      recentIdsPerSymbol: settings.recentIdsPerSymbol,
      maxHeldTrades: settings.maxQueuedTrades,
      maxGapFillMs: settings.maxGapFillMs,
      queue: this.#queue,
      counters: stats,
      logger: settings.logger,
      fetchCandles: (symbol, fromMs, toMs) =>
        fetchMinuteCandles({
          restUrl: settings.restUrl,
          apiKey: settings.apiKey,
          symbol,
          exchange: settings.exchange,
          fromMs,
          toMs,
          fetch: settings.fetch,
          requestTimeoutMs: settings.requestTimeoutMs,
          signal: this.#stop.signal,
          retry: { ...settings.gapFillRetry, logger: settings.logger },
        }),
      onGapStart: (from, to) => this.#status({ state: 'gap-filling', from, to }),
      onFillEnd: () => {
        if (!this.#gaps.filling && this.#connected) this.#statusUp();
        this.#notify();
      },
      stopping: () => this.#stop.signal.aborted,
    });
  }

  start(): void {
    const onAbort = (): void => this.#stop.abort();
    this.#run.signal.addEventListener('abort', onAbort, { once: true });
    if (this.#run.signal.aborted) this.#stop.abort();
    this.#stop.signal.addEventListener('abort', () => this.#notify(), { once: true });
    this.#loop = this.#connectLoop()
      .catch((err: unknown) => {
        this.#fatal ??= AppError.from(err);
      })
      .finally(() => {
        this.#run.signal.removeEventListener('abort', onAbort);
        this.#finished = true;
        this.#notify();
      });
  }

  /** The next trade, or undefined once the run is over; throws the fatal error, if any. */
  async next(): Promise<Tick | undefined> {
    for (;;) {
      if (this.#stop.signal.aborted) return undefined;
      const tick = this.#queue.shift();
      if (tick) return tick;
      if (this.#fatal) throw this.#fatal;
      if (this.#finished) return undefined;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Closes the socket, cancels backoff and gap fills, and waits until all of it has ended. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    await this.#gaps.settled();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #status(status: SourceStatus): void {
    try {
      this.#run.onStatus?.(status);
    } catch (err) {
      this.#log.error('onStatus callback threw', { err });
    }
  }

  /**
   * Connected, unless the server refused one of our subscriptions: its symbol gets no trades,
   * so the source is not healthy, and the reason names the pair.
   */
  #statusUp(): void {
    if (this.#refused.size === 0) {
      this.#status({ state: 'connected' });
      return;
    }
    this.#status({ state: 'disconnected', reason: [...this.#refused.values()].join('; ') });
  }

  #refuse(sub: string, msg: CcMessage): void {
    const symbol = this.#symbolBySub.get(sub);
    const reason =
      `CryptoCompare refused the subscription ${sub} (${symbol ?? sub} on ` +
      `${this.#s.exchange}): ${describeMessage(msg)}`;
    // Logged once: every reconnect subscribes again and is refused again.
    if (!this.#refused.has(sub)) {
      this.#log.error('subscription refused; that pair gets no trades', { sub, symbol, reason });
    }
    this.#refused.set(sub, reason);
    if (this.#connected && !this.#gaps.filling) this.#statusUp();
  }

  async #connectLoop(): Promise<void> {
    let attempt = 0;
    while (!this.#stop.signal.aborted) {
      const end = await this.#connectOnce();
      this.#connected = false;
      if (this.#stop.signal.aborted) return;
      if (end.fatal) {
        this.#log.error('CryptoCompare refused us; giving up', { err: end.fatal });
        this.#fatal = end.fatal;
        return;
      }
      this.#gaps.disconnected();
      this.#status({ state: 'disconnected', reason: end.reason });
      if (end.upForMs >= this.#s.healthyAfterMs) attempt = 0;
      const delayMs = reconnectDelayMs(
        attempt,
        this.#s.backoff,
        this.#s.minReconnectDelayMs,
        this.#s.random,
      );
      attempt++;
      this.#log.warn('connection lost; reconnecting', { reason: end.reason, attempt, delayMs });
      try {
        await sleep(delayMs, this.#stop.signal, this.#s.clock);
      } catch {
        return; // stopped during the wait
      }
    }
  }

  #connectOnce(): Promise<ConnectionEnd> {
    return new Promise((resolve) => {
      const url = new URL(this.#s.wsUrl);
      url.searchParams.set('api_key', this.#s.apiKey);
      const socket = new WebSocket(url, { handshakeTimeout: this.#s.heartbeatTimeoutMs });
      this.#stats.connections++;
      const conn: Connection = {
        socket,
        reason: 'connection closed',
        fatal: undefined,
        healthySince: undefined,
      };
      // Any frame proves the link alive; silence past the timeout means it is dead. A real wait on
      // I/O, on the injected clock (production's is the system one); each frame re-arms it.
      const clock = this.#s.clock;
      const armWatchdog = (): TimerHandle =>
        clock.setTimeout(() => {
          conn.reason = `no message for ${this.#s.heartbeatTimeoutMs} ms (heartbeat timeout)`;
          socket.terminate();
        }, this.#s.heartbeatTimeoutMs);
      let watchdog = armWatchdog();
      const onStop = (): void => socket.terminate();
      this.#stop.signal.addEventListener('abort', onStop, { once: true });

      socket.on('unexpected-response', (_request, response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        if (status === 401 || status === 403) {
          conn.fatal = unauthenticated(`the WebSocket upgrade was refused with HTTP ${status}`);
        } else {
          conn.reason = `the WebSocket upgrade was answered with HTTP ${status}`;
        }
        socket.terminate();
      });
      socket.on('error', (err) => {
        if (conn.reason === 'connection closed') conn.reason = err.message;
      });
      socket.on('message', (data, isBinary) => {
        clock.clearTimeout(watchdog);
        watchdog = armWatchdog();
        this.#onFrame(conn, data, isBinary);
      });
      socket.on('close', (code) => {
        clock.clearTimeout(watchdog);
        this.#stop.signal.removeEventListener('abort', onStop);
        if (conn.reason === 'connection closed') conn.reason = `connection closed (code ${code})`;
        const upForMs =
          conn.healthySince === undefined ? 0 : this.#s.clock.now() - conn.healthySince;
        resolve({ reason: conn.reason, fatal: conn.fatal, upForMs });
      });
      if (this.#stop.signal.aborted) socket.terminate();
    });
  }

  #onFrame(conn: Connection, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      this.#malformed('binary-frame', 'binary frame');
      return;
    }
    const decoded = decodeMessage(frameText(data));
    if (!decoded.ok) {
      this.#malformed(decoded.kind, decoded.detail);
      return;
    }
    const msg = decoded.message;
    switch (msg.TYPE) {
      case CC_TYPE.TRADE:
        this.#onTrade(msg);
        return;
      case CC_TYPE.HEARTBEAT:
        return;
      case CC_TYPE.WELCOME:
        conn.socket.send(JSON.stringify({ action: 'SubAdd', subs: this.#subs }));
        this.#log.info('connected; subscribing', { subs: this.#subs, server: msg['SERVER_NAME'] });
        return;
      case CC_TYPE.SUBSCRIBE_COMPLETE:
        this.#log.debug('subscribed', { sub: msg['SUB'] });
        if (typeof msg['SUB'] === 'string') this.#refused.delete(msg['SUB']);
        return;
      case CC_TYPE.LOAD_COMPLETE:
        conn.healthySince = this.#s.clock.now();
        this.#connected = true;
        if (!this.#gaps.filling) this.#statusUp();
        return;
      case CC_TYPE.UNAUTHORIZED:
        conn.fatal = unauthenticated(describeMessage(msg));
        conn.socket.terminate();
        return;
      case CC_TYPE.RATE_LIMIT:
        // Too many sockets or connects too fast: back off and try again.
        conn.reason = `rate limited: ${describeMessage(msg)}`;
        conn.socket.terminate();
        return;
      case CC_TYPE.ERROR: {
        // INVALID_SUB and the like name one subscription in PARAMETER; the others still stream.
        // The server closes the socket itself after FORCE_DISCONNECT.
        const parameter = msg['PARAMETER'];
        if (msg['MESSAGE'] === 'FORCE_DISCONNECT') conn.reason = `server: ${describeMessage(msg)}`;
        else if (typeof parameter === 'string' && this.#symbolBySub.has(parameter)) {
          this.#refuse(parameter, msg);
        } else this.#log.warn('CryptoCompare reported an error', { error: describeMessage(msg) });
        return;
      }
      default:
        this.#log.debug('ignoring message', { type: msg.TYPE, message: msg['MESSAGE'] });
    }
  }

  #malformed(kind: MalformedKind, detail: string): void {
    const count = (this.#stats.malformed[kind] ?? 0) + 1;
    this.#stats.malformed[kind] = count;
    // Once per kind: a feed gone bad would otherwise log every frame.
    if (count === 1) {
      this.#log.warn('skipping malformed message (further ones only counted)', { kind, detail });
    }
  }

  #onTrade(msg: CcMessage): void {
    const parsed = parseTrade(msg, this.#byPair);
    if (!parsed.ok) {
      this.#malformed(parsed.kind, parsed.detail);
      return;
    }
    this.#gaps.accept(parsed.tick);
    this.#notify();
  }
}

function unauthenticated(detail: string): AppError {
  return new AppError('UNAUTHENTICATED', `CryptoCompare refused the API key: ${detail}`, {
    retriable: false,
  });
}
