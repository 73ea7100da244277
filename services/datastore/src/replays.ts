/**
 * The datastore's side of the chart's replay sessions (docs/REPLAY.md): it asks the simulator
 * over `replay-commands`, keeps each session's newest status from `replay-status`, answers
 * /replays from it, and touches the sessions /stream clients watch so they are not removed as
 * idle. A session whose simulator stopped reporting is answered failed, with where it stopped.
 */
import { randomBytes } from 'node:crypto';
import type {
  Clock,
  EpochMs,
  Interval,
  MarketSymbol,
  ReplayCommand,
  ReplayEndReason,
  ReplaySessionState,
  ReplaySessionStatus,
  ReplaySpeed,
} from '@candlestream/core';
import {
  AppError,
  CHART_REPLAY_PREFIX,
  ENDED_REPLAY_STATES,
  errorMessage,
  REPLAY_HEARTBEAT_MS,
  REPLAY_MESSAGE_VERSION,
  REPLAY_SESSION_PATTERN,
  toIso,
} from '@candlestream/core';
import type { Logger } from '@candlestream/logger';

/** A session as the API shows it: times ISO-8601. */
export interface ReplayView {
  id: string;
  state: ReplaySessionState;
  symbols: MarketSymbol[];
  from: string;
  to: string;
  speed: ReplaySpeed;
  simTime: string | null;
  percent: number;
  messages: number;
  topic: string;
  reason: ReplayEndReason | null;
  error: string | null;
  updatedAt: string;
}

/** POST /replays waits this long for the simulator's first word on the new session. */
export const CREATE_TIMEOUT_MS = 5_000;
/** A live session with no status for this long is answered failed (its simulator is gone). */
export const STALE_AFTER_MS = 5 * REPLAY_HEARTBEAT_MS;
/** Sessions remembered; the oldest ended ones go first beyond it. */
const MAX_SESSIONS = 10_000;

export type ReplayControl =
  | { type: 'play' | 'pause' | 'end' }
  | { type: 'step'; interval: Interval }
  | { type: 'seek'; to: EpochMs }
  | { type: 'speed'; speed: ReplaySpeed };

interface Known {
  status: ReplaySessionStatus;
  /** When this datastore received it (its clock): staleness is measured on it. */
  receivedAt: EpochMs;
}

export interface ReplayDeskOptions {
  /** Sends one command on replay-commands (key = session). */
  publish: (command: ReplayCommand) => Promise<void>;
  clock: Clock;
  logger: Logger;
  /** The simulator removes sessions untouched this long: watched ones are touched well within it. */
  idleTimeoutMs: number;
}

function isEnded(state: ReplaySessionState): boolean {
  return ENDED_REPLAY_STATES.includes(state);
}

export function replayView(status: ReplaySessionStatus): ReplayView {
  return {
    id: status.session,
    state: status.state,
    symbols: status.symbols,
    from: toIso(status.from),
    to: toIso(status.to),
    speed: status.speed,
    simTime: status.simTime === null ? null : toIso(status.simTime),
    percent: Math.round(status.percent * 100) / 100,
    messages: status.messages,
    topic: status.topic,
    reason: status.reason ?? null,
    error: status.error ?? null,
    updatedAt: toIso(status.at),
  };
}

export class ReplayDesk {
  readonly #options: ReplayDeskOptions;
  readonly #sessions = new Map<string, Known>();
  readonly #waiters = new Map<string, Set<(status: ReplaySessionStatus) => void>>();
  readonly #listeners = new Set<(view: ReplayView) => void>();
  /** Sessions /stream clients watch, with how many watchers. */
  readonly #watched = new Map<string, number>();
  readonly #touchTimer: ReturnType<Clock['setInterval']>;

  constructor(options: ReplayDeskOptions) {
    this.#options = options;
    // A third of the idle timeout: two touches may be lost before a watched session is removed.
    const touchEveryMs = Math.max(REPLAY_HEARTBEAT_MS, Math.floor(options.idleTimeoutMs / 3));
    this.#touchTimer = options.clock.setInterval(() => this.#touchWatched(), touchEveryMs);
  }

  close(): void {
    this.#options.clock.clearInterval(this.#touchTimer);
  }

  /**
   * Asks the simulator for a session (paused at `from`) and waits for its first status; a
   * simulator that does not answer in time is UNAVAILABLE.
   */
  async create(input: {
    symbols: MarketSymbol[];
    from: EpochMs;
    to: EpochMs;
    speed: ReplaySpeed;
  }): Promise<ReplayView> {
    const session = `${CHART_REPLAY_PREFIX}${randomBytes(8).toString('hex')}`;
    const answered = this.#nextStatus(session, CREATE_TIMEOUT_MS);
    try {
      await this.#send({ v: REPLAY_MESSAGE_VERSION, type: 'create', session, ...input });
    } catch (err) {
      answered.cancel();
      throw err;
    }
    // The session takes controls once it is past preparing: its first status after that.
    const status = await answered.promise;
    if (!status) {
      throw new AppError(
        'UNAVAILABLE',
        `the simulator did not answer within ${String(CREATE_TIMEOUT_MS / 1_000)} s; is it running? (pnpm start runs it)`,
      );
    }
    this.#options.logger.info('replay created', {
      session,
      symbols: input.symbols,
      from: toIso(input.from),
      to: toIso(input.to),
    });
    return this.view(session)!;
  }

  /** The session as known now; a live one gone silent is failed. Undefined: never heard of. */
  view(session: string): ReplayView | undefined {
    if (!REPLAY_SESSION_PATTERN.test(session)) return undefined;
    const known = this.#sessions.get(session);
    if (!known) return undefined;
    return replayView(this.#withStaleness(known));
  }

  /** Hands a control to the simulator; 404 for an unknown session, 409 for an ended one. */
  async control(session: string, control: ReplayControl): Promise<ReplayView> {
    const current = this.view(session);
    if (!current) throw new AppError('NOT_FOUND', `no replay ${session.slice(0, 64)}`);
    if (isEnded(current.state)) {
      if (control.type === 'end') return current;
      throw new AppError(
        'CONFLICT',
        `replay ${session} has ${current.state === 'failed' ? 'failed' : 'ended'}${
          current.error ? `: ${current.error}` : ''
        }; start a new one`,
      );
    }
    await this.#send({ v: REPLAY_MESSAGE_VERSION, session, ...control });
    return current;
  }

  /** A status from replay-status. */
  onStatus(status: ReplaySessionStatus): void {
    this.#sessions.delete(status.session);
    this.#sessions.set(status.session, { status, receivedAt: this.#options.clock.now() });
    this.#trim();
    if (status.state !== 'preparing') {
      for (const resolve of this.#waiters.get(status.session) ?? []) resolve(status);
      this.#waiters.delete(status.session);
    }
    const view = replayView(status);
    for (const listener of this.#listeners) {
      try {
        listener(view);
      } catch (err) {
        this.#options.logger.warn('replay listener failed', { error: errorMessage(err) });
      }
    }
  }

  /** Calls `listener` with every status received; returns the unsubscribe function. */
  onChange(listener: (view: ReplayView) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A /stream client watches `session`: it is touched until the returned function is called. */
  watch(session: string): () => void {
    this.#watched.set(session, (this.#watched.get(session) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#watched.get(session) ?? 1) - 1;
      if (left > 0) this.#watched.set(session, left);
      else this.#watched.delete(session);
    };
  }

  /** Sessions known to this datastore (for /health). */
  get size(): number {
    return this.#sessions.size;
  }

  #withStaleness(known: Known): ReplaySessionStatus {
    const { status } = known;
    if (isEnded(status.state)) return status;
    const silentMs = this.#options.clock.now() - known.receivedAt;
    if (silentMs < STALE_AFTER_MS) return status;
    return {
      ...status,
      state: 'failed',
      error: `the simulator stopped reporting on this session ${String(Math.round(silentMs / 1_000))} s ago (stopped or restarted); its replay stopped at ${
        status.simTime === null ? 'its start' : toIso(status.simTime)
      } after ${String(status.messages)} trades`,
    };
  }

  #touchWatched(): void {
    for (const session of this.#watched.keys()) {
      const known = this.#sessions.get(session);
      if (!known || isEnded(known.status.state)) continue;
      this.#send({ v: REPLAY_MESSAGE_VERSION, type: 'touch', session }).catch((err: unknown) =>
        this.#options.logger.warn('replay touch failed', { session, error: errorMessage(err) }),
      );
    }
  }

  async #send(command: ReplayCommand): Promise<void> {
    try {
      await this.#options.publish(command);
    } catch (err) {
      throw AppError.from(err, 'UNAVAILABLE');
    }
  }

  #nextStatus(
    session: string,
    timeoutMs: number,
  ): { promise: Promise<ReplaySessionStatus | undefined>; cancel: () => void } {
    let done: (status: ReplaySessionStatus | undefined) => void = () => {};
    const promise = new Promise<ReplaySessionStatus | undefined>((resolve) => (done = resolve));
    const timer = this.#options.clock.setTimeout(() => finish(undefined), timeoutMs);
    const finish = (status: ReplaySessionStatus | undefined): void => {
      this.#options.clock.clearTimeout(timer);
      const set = this.#waiters.get(session);
      set?.delete(finish);
      if (set?.size === 0) this.#waiters.delete(session);
      done(status);
    };
    let set = this.#waiters.get(session);
    if (!set) this.#waiters.set(session, (set = new Set()));
    set.add(finish);
    return { promise, cancel: () => finish(undefined) };
  }

  #trim(): void {
    if (this.#sessions.size <= MAX_SESSIONS) return;
    for (const [id, known] of this.#sessions) {
      if (this.#sessions.size <= MAX_SESSIONS) break;
      if (isEnded(known.status.state) || !this.#watched.has(id)) this.#sessions.delete(id);
    }
  }
}
