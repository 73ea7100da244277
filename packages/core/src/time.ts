/** Milliseconds since the Unix epoch, UTC. Every timestamp in the platform is one. */
export type EpochMs = number;

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
export const WEEK_MS = 7 * DAY_MS;

/** The epoch (1970-01-01) was a Thursday; the first Monday 00:00 UTC after it is 4 days later. */
export const FIRST_MONDAY_MS = 4 * DAY_MS;

/** Floor modulo: the remainder has the sign of the divisor, so instants before 1970 floor down. */
export function floorMod(value: number, divisor: number): number {
  return ((value % divisor) + divisor) % divisor;
}

export function toIso(ms: EpochMs): string {
  return new Date(ms).toISOString();
}

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * Parses an ISO-8601 instant (`2024-01-01`, `2024-01-01T12:00`, `…Z`, `…+02:00`) or epoch
 * milliseconds. A time without an offset is UTC, as market data always is (Date.parse would read
 * it as local time). Returns undefined for anything else, including impossible dates (Feb 30).
 */
export function parseInstant(input: string): EpochMs | undefined {
  const text = input.trim();
  if (/^-?\d{1,16}$/.test(text)) return Number(text);
  const m = ISO_RE.exec(text);
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second, zone] = m;
  const daysInMonth = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
  if (Number(month) < 1 || Number(month) > 12 || Number(day) < 1 || Number(day) > daysInMonth) {
    return undefined;
  }
  if (
    hour !== undefined &&
    (Number(hour) > 23 || Number(minute) > 59 || Number(second ?? 0) > 59)
  ) {
    return undefined;
  }
  const ms = Date.parse(hour === undefined ? text : zone ? text : `${text}Z`);
  return Number.isFinite(ms) ? ms : undefined;
}

declare const timerBrand: unique symbol;

/** A pending timer, to cancel with the clock that made it. Opaque: only its clock reads it. */
export interface TimerHandle {
  readonly [timerBrand]: true;
}

/**
 * The time and the timers. Logic never reads the wall clock or starts a timer on it (STYLE: one
 * clock with timers); it takes a Clock. Structurally it is also xstate v5's `Clock`
 * (`createActor(machine, { clock })`), so delayed transitions run on the same time as the rest.
 */
export interface Clock {
  now(): EpochMs;
  /** Calls `fn` once, `ms` from now. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer that has not fired yet; a fired, cancelled or absent one is ignored. */
  clearTimeout(handle: TimerHandle | undefined): void;
  /** Calls `fn` every `ms` from now until cleared. */
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
}

/** Real time on the host's timers, which keep the process alive like any pending timer. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as unknown as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms) as unknown as TimerHandle,
  clearInterval: (handle) => clearInterval(handle as unknown as ReturnType<typeof setInterval>),
};

interface SimulatedTimer {
  at: EpochMs;
  /** Creation order, so timers due at the same instant fire in the order they were set. */
  seq: number;
  /** Set for an interval: its period. */
  everyMs: number | undefined;
  fn: () => void;
}

/** Work awaited inside timer callbacks gets this many event-loop turns before the next timer. */
const SETTLE_TURNS = 5;

/** Runaway guard: an interval of 1 ms across a simulated year is not a test anyone meant. */
const MAX_TIMERS_PER_RUN = 1_000_000;

/**
 * A clock that moves only when told to, for tests and for replay at any speed. Its timers fire
 * during `advance`/`advanceTo` (and the async forms) in due order, each with `now()` at its due
 * time; ties fire in the order they were set; intervals fire once per period passed; a timer set
 * by a timer fires in the same advance if it falls due inside it.
 */
export class SimulatedClock implements Clock {
  #now: EpochMs;
  #seq = 0;
  readonly #timers = new Map<TimerHandle, SimulatedTimer>();

  constructor(start: EpochMs = 0) {
    this.#now = start;
  }

  now(): EpochMs {
    return this.#now;
  }

  /** Timers still pending (a test checks that stopping cleared them). */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.#add(fn, ms, undefined);
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle !== undefined) this.#timers.delete(handle);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    // Like Node, a period under 1 ms is 1 ms, so an interval can never fire forever at one instant.
    return this.#add(fn, ms, Math.max(1, Number.isFinite(ms) ? Math.ceil(ms) : 1));
  }

  clearInterval(handle: TimerHandle | undefined): void {
    this.clearTimeout(handle);
  }

  /** Jumps to `ms`: forwards it fires the timers due on the way; backwards it fires nothing. */
  set(ms: EpochMs): void {
    if (ms >= this.#now) this.advanceTo(ms);
    else this.#now = ms;
  }

  advance(ms: number): EpochMs {
    return this.advanceTo(this.#now + ms);
  }

  /** Moves to `target`, firing every timer due by then synchronously, in order. */
  advanceTo(target: EpochMs): EpochMs {
    for (let fired = 0; ; fired++) {
      const next = this.#fireNext(target, fired);
      if (!next) break;
    }
    this.#now = Math.max(this.#now, target);
    return this.#now;
  }

  /**
   * Like `advance`, but lets awaited work run (promises, I/O callbacks already queued) before each
   * timer and at the end, so a loop that awaits between timers keeps up with the simulated time.
   */
  async advanceAsync(ms: number): Promise<EpochMs> {
    return this.advanceToAsync(this.#now + ms);
  }

  async advanceToAsync(target: EpochMs): Promise<EpochMs> {
    for (let fired = 0; ; fired++) {
      await settle();
      if (!this.#fireNext(target, fired)) break;
    }
    this.#now = Math.max(this.#now, target);
    await settle();
    return this.#now;
  }

  /** Fires pending timers until none is left (intervals make that never: clear them first). */
  async runAllAsync(): Promise<EpochMs> {
    for (let fired = 0; ; fired++) {
      await settle();
      if (!this.#fireNext(Number.POSITIVE_INFINITY, fired)) break;
    }
    return this.#now;
  }

  /**
   * Fires timers, one due time after another, until `work` settles, and returns it: for code that
   * awaits timers and promises in turn. Throws if `work` is still pending with no timer left due
   * within `withinMs` (it waits on something other than this clock).
   */
  async runUntil<T>(work: Promise<T>, withinMs: number = DAY_MS): Promise<T> {
    let settled = false;
    const watched = work.finally(() => (settled = true));
    watched.catch(() => undefined); // the caller sees the rejection through the returned promise
    const deadline = this.#now + withinMs;
    for (let fired = 0; ; fired++) {
      await settle();
      if (settled) return watched;
      if (!this.#fireNext(deadline, fired)) {
        throw new Error(`SimulatedClock: work still pending, no timer due within ${withinMs} ms`);
      }
    }
  }

  #add(fn: () => void, ms: number, everyMs: number | undefined): TimerHandle {
    const handle = {} as TimerHandle;
    // Whole milliseconds, rounded up, so now() stays an integer like Date.now() and no timer fires
    // early; a non-finite delay fires at once, as on Node.
    const delay = Number.isFinite(ms) ? Math.max(0, Math.ceil(ms)) : 0;
    this.#timers.set(handle, { at: this.#now + delay, seq: this.#seq++, everyMs, fn });
    return handle;
  }

  /** Fires the earliest timer due by `target`; false when none is. */
  #fireNext(target: EpochMs, fired: number): boolean {
    let nextHandle: TimerHandle | undefined;
    let next: SimulatedTimer | undefined;
    for (const [handle, timer] of this.#timers) {
      if (timer.at > target) continue;
      if (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq)) {
        next = timer;
        nextHandle = handle;
      }
    }
    if (!next || nextHandle === undefined) return false;
    if (fired >= MAX_TIMERS_PER_RUN) {
      throw new Error(`SimulatedClock: over ${MAX_TIMERS_PER_RUN} timers in one run`);
    }
    this.#now = Math.max(this.#now, next.at);
    if (next.everyMs === undefined) this.#timers.delete(nextHandle);
    else {
      next.at += next.everyMs;
      next.seq = this.#seq++;
    }
    next.fn();
    return true;
  }
}

/** A few turns of the event loop (macrotasks, not a wall-clock wait), so awaited work runs. */
async function settle(): Promise<void> {
  for (let turn = 0; turn < SETTLE_TURNS; turn++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
