/**
 * The replay engine: reads history a page at a time and publishes each trade when the schedule
 * says its time has come, in time slices against an absolute clock (schedule.ts). Every trade
 * due at the moment of a wake-up goes out in one send; then it sleeps until the next one is due,
 * or a command wakes it. Controls: pause, resume, step (to the end of the current bar), seek,
 * speed. The next page is read while the current one is published, so the database and the
 * broker work at the same time.
 */
import type { Clock, EpochMs, Interval, Tick } from '@candlestream/core';
import { AppError, nextBucket } from '@candlestream/core';
import { LagHistogram } from './lag.js';
import { Schedule } from './schedule.js';
import type {
  HistorySource,
  ReplayRange,
  ReplaySink,
  ReplaySpeed,
  ReplayState,
  ReplayStatus,
} from './types.js';

/** Most trades one send carries (one produce request). */
export const MAX_BATCH_TRADES = 2_000;
/** The longest sleep between looks at the clock, ms: bounds how stale the status gets. */
export const SLICE_MS = 100;
/** Messages/s is measured over this much wall time, ms. */
const RATE_WINDOW_MS = 1_000;

export interface EngineOptions {
  source: HistorySource;
  sink: ReplaySink;
  range: ReplayRange;
  clock: Clock;
  speed: ReplaySpeed;
  /** Start paused (the chart's sessions wait for play). */
  paused?: boolean;
  maxBatch?: number;
}

/** How a replay went: the CLI's last lines, the bench's figures. */
export interface ReplaySummary {
  messages: number;
  wallMs: number;
  /** Simulated time covered per wall time (pauses included). */
  effectiveSpeed: number;
  lag: ReplayStatus['lag'];
  /** It reached the end of the range (false: it was stopped first). */
  completed: boolean;
}

/** Where the replay reads: the source's pages from some time on. */
interface Cursor {
  pages: AsyncIterator<readonly Tick[]>;
  abort: AbortController;
  page: readonly Tick[];
  index: number;
  /** The read of the page after this one, started early. */
  next: Promise<IteratorResult<readonly Tick[]>> | undefined;
  done: boolean;
}

export class ReplayEngine {
  readonly #o: EngineOptions;
  readonly #schedule: Schedule;
  readonly #lag = new LagHistogram();
  readonly #maxBatch: number;
  #cursor: Cursor | undefined;
  #state: ReplayState;
  /** Every trade before this simulated time has been published. */
  #simTime: EpochMs;
  /** Where a step stops (exclusive), while one runs. */
  #stepUntil: EpochMs | undefined;
  #messages = 0;
  #startedAt: EpochMs | undefined;
  #endedAt: EpochMs | undefined;
  #stopped = false;
  /** The timetable has started from the first trade read (reset by a seek). */
  #anchored = false;
  #wake: (() => void) | undefined;
  #rateSamples: { at: EpochMs; messages: number }[] = [];

  constructor(options: EngineOptions) {
    if (!(options.range.from < options.range.to)) {
      throw new AppError('INVALID_ARGUMENT', 'replay range: from must be before to');
    }
    this.#o = options;
    this.#maxBatch = options.maxBatch ?? MAX_BATCH_TRADES;
    this.#simTime = options.range.from;
    this.#state = options.paused ? 'paused' : 'playing';
    this.#schedule = new Schedule(
      options.range.from,
      options.clock.now(),
      options.speed,
      options.paused,
    );
  }

  /**
   * Replays until the end of the range (or `stop`), and resolves with the summary. Rejects when
   * the source or the sink fails (their errors, unchanged).
   */
  async run(signal?: AbortSignal): Promise<ReplaySummary> {
    const { clock, range } = this.#o;
    this.#startedAt = clock.now();
    this.#schedule.seek(this.#simTime, this.#startedAt);
    const onAbort = (): void => this.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#cursor = this.#open(this.#simTime);
    try {
      while (!this.#stopped) {
        const next = await this.#peek();
        if (this.#stopped) break;
        if (next === undefined) {
          this.#simTime = this.#stepUntil ?? range.to;
          if (this.#stepUntil !== undefined) {
            // A step past the last trade: the replay waits there, paused, for a seek back.
            this.#endStep();
            await this.#sleep(Number.POSITIVE_INFINITY);
            continue;
          }
          this.#state = 'ended';
          break;
        }
        if (this.#stepUntil !== undefined) {
          if (next.ts < this.#stepUntil) await this.#publish(this.#stepUntil, clock.now(), false);
          else this.#endStep();
          continue;
        }
        if (this.#schedule.paused) {
          await this.#sleep(Number.POSITIVE_INFINITY);
          continue;
        }
        if (!this.#anchored) {
          // The clock starts when the first trade is at hand, not before the first page was read.
          this.#anchored = true;
          this.#schedule.seek(this.#simTime, clock.now());
        }
        const now = clock.now();
        const due = this.#schedule.dueAt(next.ts, now);
        if (due > now) {
          this.#simTime = Math.max(this.#simTime, Math.min(this.#schedule.simTime(now), next.ts));
          await this.#sleep(Math.min(due - now, SLICE_MS));
          continue;
        }
        await this.#publish(this.#schedule.simTime(now), now, true);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#close();
      this.#endedAt = clock.now();
      if (this.#state !== 'ended') this.#state = 'ended';
    }
    return this.summary();
  }

  /** Ends the replay where it stands; `run` resolves with `completed: false`. */
  stop(): void {
    this.#stopped = true;
    this.#poke();
  }

  pause(): void {
    if (this.#state !== 'playing') return;
    const now = this.#o.clock.now();
    this.#schedule.pause(now, this.#current(now));
    this.#simTime = this.#current(now);
    this.#state = 'paused';
    this.#poke();
  }

  resume(): void {
    if (this.#state !== 'paused') return;
    this.#stepUntil = undefined;
    this.#schedule.resume(this.#o.clock.now());
    this.#state = 'playing';
    this.#poke();
  }

  /**
   * Publishes the rest of the current bar of `interval` (from the simulated time to the next bar
   * boundary), then stays paused there. Playing, it pauses first.
   */
  step(interval: Interval): void {
    if (this.#state === 'ended') return;
    this.pause();
    const until = Math.min(this.#o.range.to, nextBucket(this.#simTime, interval));
    this.#stepUntil = until;
    this.#poke();
  }

  /** Continues from simulated `to` (clamped to the range): the next trade is the first at or after it. */
  seek(to: EpochMs): void {
    if (this.#state === 'ended') return;
    const { range, clock } = this.#o;
    const at = Math.min(range.to, Math.max(range.from, to));
    this.#stepUntil = undefined;
    this.#simTime = at;
    this.#schedule.seek(at, clock.now());
    this.#anchored = false;
    if (this.#cursor) {
      this.#close();
      this.#cursor = this.#open(at);
    }
    this.#poke();
  }

  setSpeed(speed: ReplaySpeed): void {
    const now = this.#o.clock.now();
    this.#schedule.setSpeed(speed, now, this.#current(now));
    this.#poke();
  }

  get state(): ReplayState {
    return this.#state;
  }

  status(): ReplayStatus {
    const { range, clock } = this.#o;
    const now = clock.now();
    const simTime = this.#state === 'playing' ? this.#current(now) : this.#simTime;
    return {
      state: this.#state,
      simTime,
      percent: Math.min(100, Math.max(0, ((simTime - range.from) / (range.to - range.from)) * 100)),
      speed: this.#schedule.speed,
      messages: this.#messages,
      rate: this.#rate(now),
      lag: this.#lag.summary(),
      wallMs: this.#startedAt === undefined ? 0 : (this.#endedAt ?? now) - this.#startedAt,
    };
  }

  summary(): ReplaySummary {
    const { range } = this.#o;
    const status = this.status();
    const covered = Math.min(status.simTime, range.to) - range.from;
    return {
      messages: status.messages,
      wallMs: status.wallMs,
      effectiveSpeed: status.wallMs > 0 ? covered / status.wallMs : Number.POSITIVE_INFINITY,
      lag: status.lag,
      completed: this.#state === 'ended' && !this.#stopped,
    };
  }

  /** The simulated time now: the schedule's, but never past the next unpublished trade. */
  #current(now: EpochMs): EpochMs {
    const scheduled = this.#schedule.simTime(now);
    const next =
      this.#cursor && !this.#cursor.done ? this.#cursor.page[this.#cursor.index] : undefined;
    const bound = next ? next.ts : this.#o.range.to;
    return Math.max(this.#simTime, Math.min(scheduled, bound, this.#o.range.to));
  }

  #endStep(): void {
    const until = this.#stepUntil!;
    this.#stepUntil = undefined;
    this.#simTime = Math.max(this.#simTime, until);
    this.#schedule.pause(this.#o.clock.now(), this.#simTime);
  }

  /**
   * Sends the trades with ts < `until` (or <= when `inclusive`: everything due by now) from the
   * current page, at most maxBatch, and records how late each was.
   */
  async #publish(until: EpochMs, now: EpochMs, inclusive: boolean): Promise<void> {
    const cursor = this.#cursor!;
    const start = cursor.index;
    let end = start;
    const limit = Math.min(cursor.page.length, start + this.#maxBatch);
    while (end < limit) {
      const ts = cursor.page[end]!.ts;
      if (inclusive ? ts > until : ts >= until) break;
      end++;
    }
    if (end === start) return;
    const batch = cursor.page.slice(start, end);
    cursor.index = end;
    if (cursor.index >= cursor.page.length) this.#prefetch(cursor);
    if (this.#schedule.speed === 'max' || !inclusive) {
      this.#lag.record(0, batch.length);
    } else {
      for (const t of batch) this.#lag.record(now - this.#schedule.dueAt(t.ts, now));
    }
    await this.#o.sink.send(batch);
    this.#messages += batch.length;
    // A seek during the send has moved the replay elsewhere; this batch does not move it back.
    if (this.#cursor === cursor) {
      this.#simTime = Math.max(this.#simTime, batch[batch.length - 1]!.ts);
    }
  }

  /** The next trade to publish, reading the next page when this one is used up. */
  async #peek(): Promise<Tick | undefined> {
    for (;;) {
      const cursor = this.#cursor!;
      if (cursor.index < cursor.page.length) return cursor.page[cursor.index];
      if (cursor.done) return undefined;
      this.#prefetch(cursor);
      let result: IteratorResult<readonly Tick[]>;
      try {
        result = await cursor.next!;
      } catch (err) {
        if (this.#cursor !== cursor) continue; // a seek closed it while the page was read
        throw err;
      }
      if (this.#cursor !== cursor) continue; // a seek replaced it while the page was read
      cursor.next = undefined;
      if (result.done) {
        cursor.done = true;
        cursor.page = [];
        cursor.index = 0;
      } else {
        cursor.page = result.value;
        cursor.index = 0;
        // Start reading the page after it now, while this one is published.
        this.#prefetch(cursor);
      }
    }
  }

  #prefetch(cursor: Cursor): void {
    if (cursor.next || cursor.done) return;
    cursor.next = cursor.pages.next();
    // A read that fails while nobody awaits it is seen at the next #peek; never unhandled.
    cursor.next.catch(() => undefined);
  }

  #open(from: EpochMs): Cursor {
    const abort = new AbortController();
    const pages = this.#o.source.pages(this.#o.range, from, abort.signal)[Symbol.asyncIterator]();
    return { pages, abort, page: [], index: 0, next: undefined, done: false };
  }

  #close(): void {
    const cursor = this.#cursor;
    if (!cursor) return;
    cursor.abort.abort();
    void cursor.pages.return?.().catch(() => undefined);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = Number.isFinite(ms)
        ? this.#o.clock.setTimeout(() => done(), Math.max(0, ms))
        : undefined;
      const done = (): void => {
        this.#o.clock.clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
    });
  }

  #poke(): void {
    this.#wake?.();
  }

  #rate(now: EpochMs): number {
    const samples = this.#rateSamples;
    samples.push({ at: now, messages: this.#messages });
    while (samples.length > 2 && samples[1]!.at <= now - RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const elapsed = now - first.at;
    return elapsed > 0 ? ((this.#messages - first.messages) / elapsed) * 1_000 : 0;
  }
}
