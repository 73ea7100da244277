import type { BackoffOptions, Clock } from '@candlestream/core';
import { AppError, backoffDelayMs, sleep, systemClock } from '@candlestream/core';

export interface BatchingOptions<T> {
  /** Sends one batch; a rejection is retried with backoff, the batch is never dropped. */
  send: (batch: T[]) => Promise<void>;
  /** Largest batch handed to `send`. */
  maxBatchItems?: number;
  /** How long a partial batch waits for company before it is sent. */
  lingerMs?: number;
  /** Items held while the sink is slow or down; `push` waits beyond this (backpressure). */
  maxBufferedItems?: number;
  backoff?: BackoffOptions;
  /** Called on each failure (with the retry delay) and when sending works again. */
  onHealth?: (health: { ok: true } | { ok: false; error: unknown; retryInMs: number }) => void;
  /** The linger and the retry backoffs wait on it; default systemClock. */
  clock?: Clock;
}

const DEFAULTS = { maxBatchItems: 1_000, lingerMs: 5, maxBufferedItems: 100_000 };
const SEND_BACKOFF: BackoffOptions = { initialDelayMs: 100, maxDelayMs: 5_000, jitter: 0.3 };

/**
 * A bounded buffer in front of a sink, drained in batches by one loop: items go out in the order
 * pushed, a failed batch is retried until it succeeds or the publisher is closed, and a full
 * buffer makes `push` wait, so a source slows to what the sink takes instead of growing memory.
 */
export class BatchingPublisher<T> {
  readonly #options: Required<Omit<BatchingOptions<T>, 'onHealth' | 'backoff' | 'clock'>> &
    BatchingOptions<T>;
  #buffer: T[] = [];
  #sent = 0;
  #failures = 0;
  #inFlight = 0;
  #closed = false;
  readonly #abort = new AbortController();
  #wakeLoop: (() => void) | undefined;
  #roomWaiters: (() => void)[] = [];
  #drainWaiters: (() => void)[] = [];
  readonly #loop: Promise<void>;

  constructor(options: BatchingOptions<T>) {
    this.#options = { ...DEFAULTS, ...options };
    this.#loop = this.#run();
  }

  get stats(): { buffered: number; sent: number; failures: number } {
    return {
      buffered: this.#buffer.length + this.#inFlight,
      sent: this.#sent,
      failures: this.#failures,
    };
  }

  /** Queues one item; resolves at once while there is room, else when there is. */
  async push(item: T): Promise<void> {
    if (this.#closed) throw new AppError('CANCELLED', 'publisher is closed');
    while (this.#buffer.length >= this.#options.maxBufferedItems) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
      if (this.#closed) throw new AppError('CANCELLED', 'publisher is closed');
    }
    this.#buffer.push(item);
    this.#wakeLoop?.();
  }

  /** Resolves once everything pushed so far has been sent. */
  async flush(): Promise<void> {
    if (this.#buffer.length === 0 && this.#inFlight === 0) return;
    await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Stops the loop; with `drain`, first sends what is buffered (waiting out sink failures). */
  async close(options: { drain: boolean }): Promise<void> {
    if (options.drain && !this.#closed) await this.flush();
    this.#closed = true;
    this.#abort.abort(new AppError('CANCELLED', 'publisher closed'));
    this.#wakeLoop?.();
    for (const wake of this.#roomWaiters.splice(0)) wake();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { send, maxBatchItems, lingerMs } = this.#options;
    const signal = this.#abort.signal;
    const clock = this.#options.clock ?? systemClock;
    let attempt = 0;
    while (!this.#closed) {
      if (this.#buffer.length === 0) {
        for (const done of this.#drainWaiters.splice(0)) done();
        await new Promise<void>((resolve) => (this.#wakeLoop = resolve));
        this.#wakeLoop = undefined;
        continue;
      }
      if (this.#buffer.length < maxBatchItems && lingerMs > 0) {
        await sleep(lingerMs, signal, clock).catch(() => undefined);
        if (this.#closed) break;
      }
      const batch = this.#buffer.splice(0, maxBatchItems);
      this.#inFlight = batch.length;
      for (const wake of this.#roomWaiters.splice(0)) wake();
      for (;;) {
        try {
          await send(batch);
          this.#sent += batch.length;
          if (attempt > 0) this.#options.onHealth?.({ ok: true });
          attempt = 0;
          break;
        } catch (error) {
          this.#failures += 1;
          const retryInMs = backoffDelayMs(attempt++, this.#options.backoff ?? SEND_BACKOFF);
          this.#options.onHealth?.({ ok: false, error, retryInMs });
          const stopped = await sleep(retryInMs, signal, clock).then(
            () => false,
            () => true,
          );
          if (stopped) {
            // Closing without drain: the unsent batch goes back so `stats` stays true.
            this.#buffer.unshift(...batch);
            this.#inFlight = 0;
            return;
          }
        }
      }
      this.#inFlight = 0;
    }
    for (const done of this.#drainWaiters.splice(0)) done();
  }
}
