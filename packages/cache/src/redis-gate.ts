import type { Clock, TimerHandle } from '@candlestream/core';
import { AppError, errorMessage, systemClock } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { Redis } from 'ioredis';

/** How long Redis is skipped after a failure before a PING tries it again. */
export const REDIS_RETRY_MS = 5_000;

/** Called with the reason Redis is being skipped, or `undefined` once it answers again. */
export type RedisProblemListener = (problem: string | undefined) => void;

/**
 * A circuit breaker in front of an optional Redis. While Redis is away every command would wait
 * for its COMMAND_TIMEOUT_MS (a request to the API made two: the chunk cache and the live store),
 * so after one failure (a failed command, or the client's own `error` event) callers skip Redis
 * and answer from storage or memory at once. Every `retryMs` a PING tries Redis again; when it
 * answers, callers use it again. `problem` and `watch` let the service report degraded meanwhile.
 */
export class RedisGate {
  readonly #redis: Redis;
  readonly #clock: Clock;
  readonly #retryMs: number;
  readonly #log: Logger;
  readonly #listeners = new Set<RedisProblemListener>();
  #problem: string | undefined;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(options: { redis: Redis; logger: Logger; clock?: Clock; retryMs?: number }) {
    this.#redis = options.redis;
    this.#clock = options.clock ?? systemClock;
    this.#retryMs = options.retryMs ?? REDIS_RETRY_MS;
    this.#log = options.logger.child({ component: 'redis-gate' });
    this.#redis.on('error', (err: Error) => this.fail(err));
  }

  /** Whether callers should use Redis now. */
  get available(): boolean {
    return this.#problem === undefined;
  }

  /** Why Redis is being skipped, or `undefined` while it is used. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /**
   * Runs `op` against Redis, or throws UNAVAILABLE at once while Redis is being skipped. A
   * failure of `op` starts skipping Redis and is rethrown.
   */
  async run<T>(op: (redis: Redis) => Promise<T>): Promise<T> {
    if (this.#problem !== undefined) {
      throw new AppError('UNAVAILABLE', `redis skipped: ${this.#problem}`);
    }
    try {
      return await op(this.#redis);
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  /** Starts skipping Redis (if not already) and schedules the PING that may end it. */
  fail(err: unknown): void {
    if (this.#closed || this.#problem !== undefined) return;
    this.#problem = `redis unavailable: ${errorMessage(err)}`;
    this.#log.warn('redis skipped until it answers a ping', {
      err: errorMessage(err),
      retryMs: this.#retryMs,
    });
    this.#notify();
    this.#schedule();
  }

  /** Calls `listener` on every change, and now if Redis is already being skipped. */
  watch(listener: RedisProblemListener): () => void {
    this.#listeners.add(listener);
    if (this.#problem !== undefined) listener(this.#problem);
    return () => this.#listeners.delete(listener);
  }

  /** Stops the probe; the Redis client belongs to its creator. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  #schedule(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => this.#probe(), this.#retryMs);
  }

  #probe(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    // Not connected: no PING, whose answer would only be the command timeout.
    const ping =
      this.#redis.status === 'ready'
        ? this.#redis.ping()
        : Promise.reject(new Error(`connection ${this.#redis.status}`));
    ping.then(
      () => {
        if (this.#closed) return;
        this.#problem = undefined;
        this.#log.info('redis answers again; using it');
        this.#notify();
      },
      () => {
        if (!this.#closed) this.#schedule();
      },
    );
  }

  #notify(): void {
    for (const listener of this.#listeners) {
      try {
        listener(this.#problem);
      } catch (err) {
        this.#log.warn('redis gate listener failed', { err: errorMessage(err) });
      }
    }
  }
}
