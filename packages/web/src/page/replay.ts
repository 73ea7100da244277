/**
 * Replay mode of the chart page (docs/CHART.md, "Replay mode"): a session of the datastore's
 * `/replays` (hosted by the simulator) replays stored trades from a start the user picks. The
 * chart shows the stored bars before the start only (from /ohlcv), then the bars the session
 * builds, from a `/stream` session subscription (docs/API.md). Play, pause, step, speed and "Back
 * to live" are POSTs to `/replays/:id`; the session's status arrives on the same socket.
 *
 * The pure parts (parsing, wording, stepping, the page's mode) come first and are unit-tested;
 * `ReplayMode` is the controller, with its I/O and the chart behind `ReplayHost`; `mountReplay`
 * binds it to the page's controls. main.ts wires the chart in.
 */
import type { Clock, Interval, TimerHandle } from '@candlestream/core';
import {
  backoffDelayMs,
  floorBucket,
  isInterval,
  parseInstant,
  parseResolution,
} from '@candlestream/core';
import type { Bar } from '@candlestream/datafeed';

export const REPLAY_STATES = ['preparing', 'paused', 'playing', 'ended', 'failed'] as const;
export type ReplayState = (typeof REPLAY_STATES)[number];
/** Simulated seconds per wall second; `max` is as fast as the simulator can publish. */
export type ReplaySpeed = number | 'max';

/** A session as `/replays` answers and `/stream` `replay` messages carry it; times epoch ms. */
export interface ReplayView {
  id: string;
  state: ReplayState;
  symbols: string[];
  from: number;
  to: number;
  speed: ReplaySpeed;
  /** Every trade before it has been replayed; null before the first. */
  simTime: number | null;
  percent: number;
  messages: number;
  topic: string;
  reason: string | null;
  error: string | null;
  updatedAt: number;
}

/** The speed select's choices (docs/CHART.md). */
export const SPEEDS: readonly ReplaySpeed[] = [0.1, 0.5, 1, 2, 5, 10, 60, 100, 1_000, 'max'];
export const DEFAULT_SPEED: ReplaySpeed = 1;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An ISO time (or epoch ms) as epoch ms, or undefined. */
function instant(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  return typeof value === 'string' ? parseInstant(value) : undefined;
}

const isSpeed = (value: unknown): value is ReplaySpeed =>
  value === 'max' || (typeof value === 'number' && Number.isFinite(value) && value > 0);

/** Reads a ReplayView (POST /replays, GET and POST /replays/:id, `/stream` `replay`), or undefined. */
export function parseReplayView(body: unknown): ReplayView | undefined {
  if (!isRecord(body)) return undefined;
  const { id, state, symbols, speed, percent, messages, topic } = body;
  const from = instant(body['from']);
  const to = instant(body['to']);
  const simTime = body['simTime'] === null ? null : instant(body['simTime']);
  if (typeof id !== 'string' || id === '') return undefined;
  if (!(REPLAY_STATES as readonly unknown[]).includes(state)) return undefined;
  if (from === undefined || to === undefined || simTime === undefined) return undefined;
  if (!isSpeed(speed)) return undefined;
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    id,
    state: state as ReplayState,
    symbols: Array.isArray(symbols) ? symbols.filter((s) => typeof s === 'string') : [],
    from,
    to,
    speed,
    simTime,
    percent: Math.min(100, Math.max(0, count(percent))),
    messages: count(messages),
    topic: typeof topic === 'string' ? topic : `replay.${id}`,
    reason: text(body['reason']),
    error: text(body['error']),
    updatedAt: instant(body['updatedAt']) ?? 0,
  };
}

/** The speed select's value (`"60"`, `"max"`) as a speed, or undefined. */
export function parseSpeed(text: string): ReplaySpeed | undefined {
  if (text === 'max') return 'max';
  const value = Number(text);
  return text.trim() !== '' && isSpeed(value) ? value : undefined;
}

export function speedLabel(speed: ReplaySpeed): string {
  return speed === 'max' ? 'max' : `${String(speed)}×`;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/**
 * A `<input type="datetime-local">` value read as UTC (the chart's time axis is UTC, so the page
 * says UTC beside the field rather than using the browser's zone). Undefined when not a time.
 */
export function parseUtcInput(value: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(value.trim())) return undefined;
  return parseInstant(value.trim()); // no offset: UTC (core parseInstant)
}

/** `ms` as a datetime-local value in UTC, to the minute. */
export function utcInputValue(ms: number): string {
  const d = new Date(ms);
  return (
    `${String(d.getUTCFullYear())}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}` +
    `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
  );
}

/** `2026-11-20 00:05 UTC`. */
export function utcMinute(ms: number): string {
  return `${utcInputValue(ms).replace('T', ' ')} UTC`;
}

/** The status line: "paused · 2026-11-20 00:05 UTC · 3%", and how it ended or failed. */
export function replayLine(view: ReplayView): string {
  const at = utcMinute(view.simTime ?? view.from);
  const done = `${String(Math.floor(view.percent))}%`;
  if (view.state === 'failed') return `failed · ${at}: ${view.error ?? 'no reason given'}`;
  if (view.state === 'ended') {
    const why = view.reason === 'done' ? 'the end of the range' : view.reason;
    return `ended · ${at} · ${done}${why ? ` (${why})` : ''}`;
  }
  return `${view.state} · ${at} · ${done}`;
}

/** The interval name /stream session subscriptions take for a chart resolution (`60` → `1h`). */
export function streamInterval(resolution: string): Interval {
  return isInterval(resolution) ? resolution : parseResolution(resolution);
}

/**
 * Where the stored history shown before a replay ends (exclusive): the open of the bar holding
 * the start, so a bar that began before it, whose later trades are the future, is not shown
 * whole; the session's own bar of that time follows from the stream.
 */
export function historyEnd(from: number, resolution: string): number {
  return floorBucket(from, streamInterval(resolution));
}

/** A `/stream` message about a replay session (docs/API.md), times epoch ms. */
export type ReplayMessage =
  | { type: 'bar'; session: string; symbol: string; interval: Interval; bar: Bar; final: boolean }
  | { type: 'replay'; session: string; status: ReplayView }
  | { type: 'subscribed' | 'unsubscribed'; session: string; symbol: string; interval: string }
  | { type: 'error'; session: string | undefined; error: string };

/**
 * Reads a `/stream` frame as a replay session's message; undefined for anything else (the live
 * series' messages have no `session`, and heartbeats are proof of life only).
 */
export function parseReplayMessage(data: unknown): ReplayMessage | undefined {
  if (typeof data !== 'string') return undefined;
  let message: unknown;
  try {
    message = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (!isRecord(message)) return undefined;
  const { type, session } = message;
  if (type === 'error') {
    const error = typeof message['error'] === 'string' ? message['error'] : 'stream error';
    return { type, session: typeof session === 'string' ? session : undefined, error };
  }
  if (typeof session !== 'string') return undefined;
  if (type === 'replay') {
    const status = parseReplayView(message['status']);
    return status ? { type, session, status } : undefined;
  }
  const symbol = typeof message['symbol'] === 'string' ? message['symbol'] : '';
  if (type === 'subscribed' || type === 'unsubscribed') {
    const interval = typeof message['interval'] === 'string' ? message['interval'] : '';
    return { type, session, symbol, interval };
  }
  if (type !== 'bar') return undefined;
  let interval: Interval;
  try {
    interval = streamInterval(String(message['interval']));
  } catch {
    return undefined;
  }
  const raw = message['bar'];
  if (!isRecord(raw)) return undefined;
  const time = instant(raw['time']);
  const values = [raw['open'], raw['high'], raw['low'], raw['close'], raw['volume']];
  if (time === undefined || !values.every((v) => typeof v === 'number' && Number.isFinite(v)))
    return undefined;
  const [open, high, low, close, volume] = values as number[];
  return {
    type,
    session,
    symbol,
    interval,
    bar: { time, open: open!, high: high!, low: low!, close: close!, volume: volume! },
    final: message['final'] === true,
  };
}

/** Why a replay request failed, in words; `status` 0 when there was no answer at all. */
export function replayFailed(what: string, status: number, error: string | undefined): string {
  if (status === 0)
    return `Could not ${what}: the datastore did not answer (${error ?? 'no reason'}).`;
  if (status === 503) {
    // The datastore's words name the simulator when it is the one not answering.
    const said = error?.replace(/\.$/, '') ?? 'the replay service is not available';
    return `Could not ${what}: ${said}${/simulator/i.test(said) ? '.' : '; is the simulator running?'}`;
  }
  if (status === 404)
    return `Could not ${what}: the replay session is gone (${error ?? 'not found'}).`;
  if (status === 409) return `Could not ${what}: the replay has already ended.`;
  return `Could not ${what}: ${error ?? `HTTP ${String(status)}`}.`;
}

/** Where the page is with replays: off, picking a start, starting one, or on a session. */
export type ReplayPhase = 'off' | 'picking' | 'starting' | 'on';
/** `data-replay` on <body>: the phase, and once on a session, its state (failed is ended). */
export type PageReplayMode =
  'off' | 'picking' | 'starting' | 'preparing' | 'paused' | 'playing' | 'ended';

export function pageMode(phase: ReplayPhase, view: ReplayView | undefined): PageReplayMode {
  if (phase !== 'on' || !view) return phase === 'on' ? 'starting' : phase;
  return view.state === 'failed' ? 'ended' : view.state;
}

// ---------------------------------------------------------------------------------------------
// The controller.

/** A datastore answer: the status, and the JSON body (undefined when it had none). */
export interface Answer {
  status: number;
  body: unknown;
}

/** The WebSocket the controller needs (the browser's; a fake in tests). */
export interface ReplaySocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** The page around the controller: the chart, the requests and the clock. */
export interface ReplayHost {
  symbol(): string;
  resolution(): string;
  /** `fetch` of a datastore path as JSON; rejects only when there was no answer. */
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Answer>;
  /**
   * Shows the stored bars before `end` (exclusive) at `resolution` instead of the live chart,
   * live updates off; false when they could not be loaded (the host has said why).
   */
  showBefore(resolution: string, end: number): Promise<boolean>;
  /** A replayed bar: the forming one replaces the last bar, a new time appends. */
  onBar(bar: Bar): void;
  /** The live chart again, as the page loads it. */
  goLive(): Promise<void>;
  notice(text: string | undefined): void;
  /** Something the controls show changed. */
  onChange(): void;
  openSocket(): ReplaySocket;
  clock: Clock;
}

const SOCKET_OPEN = 1;
const CLOSE_NORMAL = 1000;
/** Without a status for this long while on a session, GET /replays/:id (a missed message, a gone session). */
export const STATUS_POLL_MS = 5_000;
/** Reconnecting a lost replay socket: the datafeed's backoff (datafeed DEFAULT_RECONNECT). */
const RECONNECT = { initialDelayMs: 500, maxDelayMs: 15_000, jitter: 0.5 };
/** A pressed Play/Pause shows its new label this long at most before the session confirms it. */
const PENDING_MS = 5_000;

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * One tab's replay: picking a start, the session, its `/stream` subscription at the chart's
 * interval, the controls. Its own socket, not the datafeed's: the datafeed reads every `bar`
 * message as a live series' (it does not know `session`), so a session's bars on its socket would
 * be drawn as live ones.
 */
export class ReplayMode {
  readonly #host: ReplayHost;
  #phase: ReplayPhase = 'off';
  #view: ReplayView | undefined;
  #speed: ReplaySpeed = DEFAULT_SPEED;
  /** The start picked (epoch ms). */
  #from: number | undefined;
  /** The subscription bars are applied from; undefined while the chart (re)loads. */
  #interval: Interval | undefined;
  /** Counts starts and exits: an answer for an earlier one is dropped. */
  #generation = 0;
  #socket: ReplaySocket | undefined;
  #attempt = 0;
  #retryTimer: TimerHandle | undefined;
  #pollTimer: TimerHandle | undefined;
  #lastStatusAt = 0;
  /** Play or pause pressed and not yet confirmed, with when. */
  #pending: { action: 'play' | 'pause'; at: number } | undefined;
  /** A Step under way: where it ends, and the sub-steps asked for (30m, 1w). */
  /** Replayed bars applied, for tests. */
  #bars = 0;

  constructor(host: ReplayHost) {
    this.#host = host;
  }

  get phase(): ReplayPhase {
    return this.#phase;
  }
  get view(): ReplayView | undefined {
    return this.#view;
  }
  get speed(): ReplaySpeed {
    return this.#speed;
  }
  get from(): number | undefined {
    return this.#from;
  }
  get barsApplied(): number {
    return this.#bars;
  }
  /** On a session (or starting one): interval changes go to the replay, not to live. */
  get replaying(): boolean {
    return this.#phase === 'starting' || this.#phase === 'on';
  }
  get mode(): PageReplayMode {
    return pageMode(this.#phase, this.#view);
  }
  /** The Play/Pause toggle's action: what a press asks for. */
  get toggleAction(): 'play' | 'pause' {
    const pending = this.#pending;
    if (pending && this.#host.clock.now() - pending.at < PENDING_MS)
      return pending.action === 'play' ? 'pause' : 'play';
    return this.#view?.state === 'playing' ? 'pause' : 'play';
  }
  get ended(): boolean {
    return this.#view?.state === 'ended' || this.#view?.state === 'failed';
  }

  /** Replay mode on: the page waits for a start (a bar clicked, a date typed). */
  enter(): void {
    if (this.#phase !== 'off') return;
    this.#phase = 'picking';
    this.#host.onChange();
  }

  /** A bar clicked on the chart: its open time is the start, while a start is being picked. */
  pick(time: number): void {
    if (this.#phase === 'picking') void this.start(time);
  }

  /** Creates the session at `from` (paused), shows the bars before it and subscribes. */
  async start(from: number): Promise<void> {
    if (this.#phase !== 'picking') return;
    const generation = ++this.#generation;
    const symbol = this.#host.symbol();
    this.#phase = 'starting';
    this.#from = from;
    this.#host.notice(undefined);
    this.#host.onChange();
    const body = {
      symbols: [symbol],
      from: iso(from),
      to: iso(this.#host.clock.now()),
      speed: this.#speed,
    };
    const answer = await this.#ask('start the replay', 'POST', '/replays', body);
    if (generation !== this.#generation) {
      // Left replay mode meanwhile: the session made for nothing is ended at once.
      const made = parseReplayView(answer?.body);
      if (made) this.#end(made.id);
      return;
    }
    const view = answer && answer.status === 201 ? parseReplayView(answer.body) : undefined;
    if (!view) {
      if (answer && answer.status === 201)
        this.#host.notice('Could not start the replay: the datastore answered no session.');
      this.#phase = 'picking';
      this.#host.onChange();
      return;
    }
    this.#view = view;
    this.#lastStatusAt = this.#host.clock.now();
    // 'on' once the chart shows the past only, so nothing reads the session's state over the
    // live bars.
    const shown = await this.#load(this.#host.resolution(), generation);
    if (generation !== this.#generation) return;
    if (!shown) {
      this.#end(view.id);
      this.#view = undefined;
      this.#phase = 'picking';
      this.#host.onChange();
      return;
    }
    this.#phase = 'on';
    this.#host.onChange();
    this.#schedulePoll(generation);
  }

  /** The chart's interval changed while replaying: history before the start again, resubscribed. */
  async changeInterval(resolution: string): Promise<void> {
    if (this.#phase === 'on') await this.#load(resolution, this.#generation);
  }

  async togglePlay(): Promise<void> {
    if (!this.#view || this.ended) return;
    const action = this.toggleAction;
    this.#pending = { action, at: this.#host.clock.now() };
    this.#host.onChange();
    await this.#command(action === 'play' ? 'play the replay' : 'pause the replay', { action });
  }

  /** One bar of the chart's interval: the rest of the current bar, then paused (the server's step). */
  async step(): Promise<void> {
    if (!this.#view || this.ended) return;
    const interval = streamInterval(this.#host.resolution());
    this.#pending = { action: 'pause', at: this.#host.clock.now() };
    await this.#command('step the replay', { action: 'step', interval });
  }

  /** The speed select: the next start's speed, and the session's now. */
  async setSpeed(speed: ReplaySpeed): Promise<void> {
    this.#speed = speed;
    this.#host.onChange();
    if (this.#view && !this.ended)
      await this.#command('change the speed', { action: 'speed', speed });
  }

  /**
   * Leaves replay mode: the session ended (it is the server's to remove otherwise only once
   * idle), the socket closed; `live` then loads the live chart again (a symbol switch loads its own).
   */
  async exit(live = true): Promise<void> {
    if (this.#phase === 'off') return;
    this.#generation++;
    const view = this.#view;
    // Starting too: the chart may be showing (or about to show) the past already.
    const wasReplaying = this.replaying;
    this.#phase = 'off';
    this.#view = undefined;
    this.#from = undefined;
    this.#interval = undefined;
    this.#pending = undefined;
    this.#host.clock.clearTimeout(this.#retryTimer);
    this.#host.clock.clearTimeout(this.#pollTimer);
    this.#retryTimer = undefined;
    this.#pollTimer = undefined;
    this.#closeSocket();
    this.#host.notice(undefined);
    this.#host.onChange();
    if (view && view.state !== 'ended' && view.state !== 'failed') this.#end(view.id);
    if (live && wasReplaying) await this.#host.goLive();
  }

  /** Ends a session, best effort: one nobody ends is removed by the server once idle. */
  #end(id: string): void {
    this.#host
      .request('POST', `/replays/${encodeURIComponent(id)}`, { action: 'end' })
      .catch((err: unknown) => console.warn('ending the replay session failed', err));
  }

  /** Shows the history before the start at `resolution`, then subscribes the session at it. */
  async #load(resolution: string, generation: number): Promise<boolean> {
    const view = this.#view;
    if (!view) return false;
    const old = this.#interval;
    this.#interval = undefined; // nothing applied while the chart reloads: the resubscription resends it
    if (old)
      this.#send({
        type: 'unsubscribe',
        session: view.id,
        symbol: this.#host.symbol(),
        interval: old,
      });
    const shown = await this.#host.showBefore(resolution, historyEnd(view.from, resolution));
    if (generation !== this.#generation || !shown) {
      if (generation === this.#generation && old) {
        // The chart kept the old interval (the host said why): follow it again.
        this.#interval = old;
        this.#send(this.#subscription('subscribe'));
      }
      return false;
    }
    this.#interval = streamInterval(resolution);
    this.#host.onChange();
    if (this.#socket?.readyState === SOCKET_OPEN) this.#send(this.#subscription('subscribe'));
    else if (!this.#socket) this.#connect(generation);
    return true;
  }

  #subscription(type: 'subscribe' | 'unsubscribe'): Record<string, unknown> {
    return { type, session: this.#view?.id, symbol: this.#host.symbol(), interval: this.#interval };
  }

  #connect(generation: number): void {
    this.#retryTimer = undefined;
    if (generation !== this.#generation) return;
    let socket: ReplaySocket;
    try {
      socket = this.#host.openSocket();
    } catch (err) {
      console.warn('cannot open the replay stream', err);
      this.#lost(generation);
      return;
    }
    this.#socket = socket;
    socket.onopen = () => {
      this.#attempt = 0;
      if (this.#interval) this.#send(this.#subscription('subscribe'));
    };
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onclose = () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#lost(generation);
    };
    socket.onerror = () => undefined; // a close event follows, with a code that says more
  }

  /** The socket is gone: again after a backoff while on the session (the stream resends its bars). */
  #lost(generation: number): void {
    if (generation !== this.#generation || !this.replaying) return;
    const delayMs = backoffDelayMs(this.#attempt++, { ...RECONNECT, multiplier: 2 });
    this.#retryTimer = this.#host.clock.setTimeout(() => this.#connect(generation), delayMs);
  }

  #closeSocket(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    if (!socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(CLOSE_NORMAL, 'replay left');
    } catch (err) {
      console.warn('closing the replay stream failed', err);
    }
  }

  #send(message: Record<string, unknown>): void {
    if (this.#socket?.readyState !== SOCKET_OPEN) return; // the open sends the subscription
    try {
      this.#socket.send(JSON.stringify(message));
    } catch (err) {
      console.warn('replay stream send failed', err);
    }
  }

  #receive(data: unknown): void {
    const message = parseReplayMessage(data);
    const view = this.#view;
    if (!message || !view) return;
    if (message.session !== undefined && message.session !== view.id) return;
    switch (message.type) {
      case 'bar':
        if (message.interval !== this.#interval || message.symbol !== this.#host.symbol()) return;
        this.#bars++;
        this.#host.onBar(message.bar);
        return;
      case 'replay':
        this.#status(message.status);
        return;
      case 'error':
        this.#host.notice(`The replay stream said: ${message.error}.`);
        return;
      default:
        return; // subscribed, unsubscribed
    }
  }

  /** A newer status of the session: shown, and a Step of several sub-steps carried on. */
  #status(next: ReplayView): void {
    const view = this.#view;
    if (!view || next.id !== view.id || next.updatedAt < view.updatedAt) return;
    this.#view = next;
    this.#lastStatusAt = this.#host.clock.now();
    const pending = this.#pending;
    if (
      pending &&
      (next.state === (pending.action === 'play' ? 'playing' : 'paused') || this.ended)
    )
      this.#pending = undefined;
    if (next.state === 'failed')
      this.#host.notice(`The replay failed: ${next.error ?? 'no reason given'}.`);
    this.#host.onChange();
  }

  /** POST /replays/:id; a 202's view is taken if it is not older than what the stream said. */
  async #command(what: string, body: Record<string, unknown>): Promise<void> {
    const view = this.#view;
    if (!view) return;
    const generation = this.#generation;
    const answer = await this.#ask(what, 'POST', `/replays/${encodeURIComponent(view.id)}`, body);
    if (generation !== this.#generation) return;
    if (answer?.status === 202) {
      const next = parseReplayView(answer.body);
      if (next) this.#status(next);
      return;
    }
    this.#pending = undefined;
    if (answer?.status === 409 || answer?.status === 404) void this.#refresh(generation);
    this.#host.onChange();
  }

  /** A request; a failure is said in the notice (and undefined returned when nothing answered). */
  async #ask(
    what: string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
  ): Promise<Answer | undefined> {
    let answer: Answer;
    try {
      answer = await this.#host.request(method, path, body);
    } catch (err) {
      this.#host.notice(replayFailed(what, 0, (err as Error).message));
      return undefined;
    }
    if (answer.status >= 400) {
      const said = isRecord(answer.body) ? answer.body['error'] : undefined;
      this.#host.notice(
        replayFailed(what, answer.status, typeof said === 'string' ? said : undefined),
      );
    }
    return answer;
  }

  /** GET /replays/:id: the status when the stream has not said it; a 404 means the session is gone. */
  async #refresh(generation: number): Promise<void> {
    const view = this.#view;
    if (!view) return;
    let answer: Answer;
    try {
      answer = await this.#host.request('GET', `/replays/${encodeURIComponent(view.id)}`);
    } catch (err) {
      console.warn('reading the replay status failed; trying again later', err);
      return;
    }
    if (generation !== this.#generation || !this.#view) return;
    if (answer.status === 404) {
      // Removed by the server (idle, or the simulator restarted): ended, as far as this page goes.
      this.#view = { ...this.#view, state: 'ended', reason: this.#view.reason ?? 'gone' };
      this.#host.notice(
        'The replay session is gone from the server. Back to live to start another.',
      );
      this.#host.onChange();
      return;
    }
    const next = parseReplayView(answer.body);
    if (next) this.#status(next);
  }

  #schedulePoll(generation: number): void {
    this.#pollTimer = this.#host.clock.setTimeout(() => {
      this.#pollTimer = undefined;
      if (generation !== this.#generation) return;
      const quiet = this.#host.clock.now() - this.#lastStatusAt >= STATUS_POLL_MS;
      const polled = quiet && !this.ended ? this.#refresh(generation) : Promise.resolve();
      void polled.finally(() => {
        if (generation === this.#generation) this.#schedulePoll(generation);
      });
    }, STATUS_POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// The controls (index.html's #replay bar and the header's Replay button).

const el = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

/** Binds the replay controls to a ReplayMode over `host`, and renders them on every change. */
export function mountReplay(
  host: Omit<ReplayHost, 'onChange'> & { onChange?: () => void },
): ReplayMode {
  const toggle = el<HTMLButtonElement>('replay-toggle');
  const bar = el('replay');
  const pickForm = el<HTMLFormElement>('replay-pick');
  const startInput = el<HTMLInputElement>('replay-start');
  const controls = el('replay-controls');
  const play = el<HTMLButtonElement>('replay-play');
  const stepButton = el<HTMLButtonElement>('replay-step');
  const speed = el<HTMLSelectElement>('replay-speed');
  const status = el('replay-status');
  const exitButton = el<HTMLButtonElement>('replay-exit');
  speed.replaceChildren(
    ...SPEEDS.map((s) =>
      Object.assign(document.createElement('option'), {
        value: String(s),
        textContent: speedLabel(s),
      }),
    ),
  );
  speed.value = String(DEFAULT_SPEED);

  const render = (): void => {
    const phase = mode.phase;
    const view = mode.view;
    toggle.setAttribute('aria-pressed', String(phase !== 'off'));
    bar.hidden = phase === 'off';
    pickForm.hidden = phase !== 'picking' && phase !== 'starting';
    controls.hidden = phase !== 'on';
    for (const input of pickForm.querySelectorAll<HTMLInputElement | HTMLButtonElement>(
      'input, button',
    ))
      input.disabled = phase === 'starting';
    const action = mode.toggleAction;
    play.textContent = action === 'play' ? 'Play' : 'Pause';
    play.setAttribute('aria-label', action === 'play' ? 'Play the replay' : 'Pause the replay');
    play.disabled = stepButton.disabled = mode.ended || !view;
    if (view && document.activeElement !== speed) speed.value = String(view.speed);
    if (phase === 'starting' && mode.from !== undefined)
      startInput.value = utcInputValue(mode.from);
    const line =
      phase === 'picking'
        ? 'Click a bar or type a date to start the replay'
        : phase === 'starting'
          ? `starting at ${mode.from === undefined ? '…' : utcMinute(mode.from)}…`
          : view
            ? replayLine(view)
            : '';
    status.textContent = line;
    Object.assign(document.body.dataset, {
      replay: mode.mode,
      replaySession: view?.id ?? '',
      replayFrom: mode.from === undefined ? '' : String(mode.from),
      replaySimTime: view?.simTime == null ? '' : String(view.simTime),
      replayPercent: view ? String(view.percent) : '',
      replaySpeed: String(view?.speed ?? mode.speed),
      replayStatus: line,
      replayBars: String(mode.barsApplied),
    });
    host.onChange?.();
  };
  const mode: ReplayMode = new ReplayMode({ ...host, onChange: render });

  toggle.addEventListener('click', () => {
    if (mode.phase === 'off') {
      // Offer a start a while back, for typing over; a bar click needs no typing at all.
      if (!startInput.value) startInput.value = utcInputValue(host.clock.now() - 3_600_000);
      mode.enter();
    } else void mode.exit();
  });
  pickForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const from = parseUtcInput(startInput.value);
    if (from === undefined) {
      host.notice('Type the replay start as a date and time (UTC), or click a bar.');
      return;
    }
    if (from >= host.clock.now()) {
      host.notice('The replay start must be in the past.');
      return;
    }
    void mode.start(from);
  });
  play.addEventListener('click', () => void mode.togglePlay());
  stepButton.addEventListener('click', () => void mode.step());
  speed.addEventListener('change', () => {
    const chosen = parseSpeed(speed.value);
    if (chosen !== undefined) void mode.setSpeed(chosen);
  });
  exitButton.addEventListener('click', () => void mode.exit());
  render();
  return mode;
}
