/**
 * Bounds the history work in flight (/ohlcv, /udf/history), per client and in total. A burst
 * from one client (500 concurrent 3-day requests) used to run all at once: p50 7.6 s, memory
 * 238 → 625 MB, and every other client waited behind it. Now each client runs at most
 * `perClient` at a time and the process at most `total`; a request beyond that waits in a short
 * queue, and is refused with Retry-After when the queue is full or its wait is over: 429 when its
 * own client's share is the bottleneck, 503 when the whole process is busy.
 */
import type { RequestHandler } from 'express';
import type { Clock, TimerHandle } from '@candlestream/core';
import { AppError, systemClock } from '@candlestream/core';
import { principalOf } from './auth.js';
import { limitKey } from './rate-limit.js';

/** History requests one client may have running at once. */
export const HISTORY_PER_CLIENT = 8;
/** History requests the process runs at once, all clients together. */
export const HISTORY_TOTAL = 32;
/** Requests waiting for a slot, all clients together; beyond it, refused at once. */
export const HISTORY_MAX_QUEUED = 64;
/** Longest wait for a slot before the request is refused. */
export const HISTORY_QUEUE_MS = 2_000;
/** What a refusal's Retry-After says, in seconds. */
export const HISTORY_RETRY_AFTER_S = 1;

export interface ConcurrencyOptions {
  perClient?: number;
  total?: number;
  maxQueued?: number;
  queueMs?: number;
  clock?: Clock;
}

interface Waiter {
  key: string;
  start: () => void;
  timer: TimerHandle;
}

export type Release = () => void;

export class ConcurrencyGate {
  readonly #perClient: number;
  readonly #total: number;
  readonly #maxQueued: number;
  readonly #queueMs: number;
  readonly #clock: Clock;
  readonly #active = new Map<string, number>();
  #running = 0;
  readonly #queue: Waiter[] = [];

  constructor(options: ConcurrencyOptions = {}) {
    this.#perClient = options.perClient ?? HISTORY_PER_CLIENT;
    this.#total = options.total ?? HISTORY_TOTAL;
    this.#maxQueued = options.maxQueued ?? HISTORY_MAX_QUEUED;
    this.#queueMs = options.queueMs ?? HISTORY_QUEUE_MS;
    this.#clock = options.clock ?? systemClock;
  }

  /** Requests running and waiting now. */
  get load(): { running: number; queued: number } {
    return { running: this.#running, queued: this.#queue.length };
  }

  /**
   * A slot for `key`, at once or after a wait; the returned function gives it back (call it
   * once). Throws RATE_LIMITED (this client's share) or UNAVAILABLE (the process is busy), both
   * with `details.retryAfterS`.
   */
  acquire(key: string): Promise<Release> {
    if (this.#fits(key)) return Promise.resolve(this.#take(key));
    const queuedForKey = this.#queue.filter((w) => w.key === key).length;
    // A client's queue is as long as its share: more than that is a burst, refused at once.
    if (queuedForKey >= this.#perClient) return Promise.reject(this.#refusal(key));
    if (this.#queue.length >= this.#maxQueued) return Promise.reject(this.#refusal(key));
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        key,
        start: () => resolve(this.#take(key)),
        timer: this.#clock.setTimeout(() => {
          const at = this.#queue.indexOf(waiter);
          if (at !== -1) this.#queue.splice(at, 1);
          reject(this.#refusal(key));
        }, this.#queueMs),
      };
      this.#queue.push(waiter);
    });
  }

  #fits(key: string): boolean {
    return this.#running < this.#total && (this.#active.get(key) ?? 0) < this.#perClient;
  }

  #take(key: string): Release {
    this.#running += 1;
    this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#running -= 1;
      const left = (this.#active.get(key) ?? 1) - 1;
      if (left === 0) this.#active.delete(key);
      else this.#active.set(key, left);
      this.#startWaiting();
    };
  }

  /** Starts the oldest waiters that fit now (another client's may, while this one's is full). */
  #startWaiting(): void {
    for (let i = 0; i < this.#queue.length && this.#running < this.#total;) {
      const waiter = this.#queue[i]!;
      if (!this.#fits(waiter.key)) {
        i += 1;
        continue;
      }
      this.#queue.splice(i, 1);
      this.#clock.clearTimeout(waiter.timer);
      waiter.start();
    }
  }

  #refusal(key: string): AppError {
    const details = { retryAfterS: HISTORY_RETRY_AFTER_S };
    return (this.#active.get(key) ?? 0) >= this.#perClient
      ? new AppError(
          'RATE_LIMITED',
          `too many history requests at once from this client (at most ${this.#perClient}); retry in ${HISTORY_RETRY_AFTER_S} s`,
          { details },
        )
      : new AppError(
          'UNAVAILABLE',
          `the server is busy with other history requests; retry in ${HISTORY_RETRY_AFTER_S} s`,
          { details },
        );
  }
}

/**
 * Holds a slot of `gate` while the request is answered, keyed like the rate limit (after
 * `requireAuth`). The slot is given back when the answer is sent or the client goes away.
 */
export function limitConcurrency(gate: ConcurrencyGate): RequestHandler {
  return (req, res, next) => {
    const key = limitKey(principalOf(res.locals), req.ip ?? req.socket.remoteAddress);
    let gone = false;
    res.once('close', () => (gone = true));
    gate.acquire(key).then((release) => {
      // Gave up while waiting: nothing to answer, the slot goes to the next one.
      if (gone) {
        release();
        return;
      }
      res.once('finish', release);
      res.once('close', release);
      next();
    }, next);
  };
}
