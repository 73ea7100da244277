import type { Clock } from '@candlestream/core';
import { AppError, errorMessage, retry } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';

/** Backoff between tries of a failing dependency call. */
export const DEPENDENCY_RETRY_BACKOFF = { initialDelayMs: 200, maxDelayMs: 10_000, jitter: 0.3 };
/**
 * A call with no answer for this long is reported as failing while it still waits: a database
 * behind a broken network answers nothing and errors only at its query timeout (packages/db
 * DEFAULT_DB_TIMEOUTS), which is longer than an operator should be kept in the dark.
 */
export const STALLED_AFTER_MS = 5_000;
/** Heartbeat period while a call waits (kafkajs' default heartbeat interval). */
export const HEARTBEAT_WHILE_WAITING_MS = 3_000;

export interface DependencyRetrierOptions<C extends string> {
  logger: Logger;
  /** Whose timers measure real waiting: the stall report, heartbeats while waiting, backoffs. */
  waitClock: Clock;
  stalledAfterMs?: number;
  /** Whether trying the same call again may help (not for data the database or broker refused). */
  isRetriable: (err: unknown) => boolean;
  /** Errors about the data itself: passed on as they are even while the consumer is stopping. */
  isDataError: (err: unknown) => boolean;
  /** A failing dependency (retrying, or stalled) or its recovery, for the machine and /health. */
  onHealth?: (check: C, problem: string | undefined) => void;
  /** Each failed try that is retried. */
  onRetry?: (check: C) => void;
}

/**
 * Runs a consumer's dependency calls until they succeed, backing off between tries and keeping
 * the group membership alive (heartbeats while a try waits, and after each backoff), so a batch
 * never fails because the database or the broker was away for a while: it waits, degraded. A try
 * with no answer for `stalledAfterMs` is reported as failing while it waits. Gives up only on an
 * error `isRetriable` refuses, or when the consumer stops (CANCELLED).
 */
export class DependencyRetrier<C extends string = string> {
  readonly #o: DependencyRetrierOptions<C>;

  constructor(options: DependencyRetrierOptions<C>) {
    this.#o = options;
  }

  async run<T>(
    check: C,
    signal: AbortSignal,
    heartbeat: (() => Promise<void>) | undefined,
    work: () => Promise<T>,
  ): Promise<T> {
    const { waitClock, logger } = this.#o;
    const stalledAfterMs = this.#o.stalledAfterMs ?? STALLED_AFTER_MS;
    let failed = false;
    const watched = async (): Promise<T> => {
      const timer = waitClock.setTimeout(() => {
        failed = true;
        const problem = `no answer for ${stalledAfterMs} ms`;
        this.#o.onHealth?.(check, problem);
        logger.warn('stalled', { check, err: problem });
      }, stalledAfterMs);
      // Heartbeats go on while a try waits (kafkajs throttles them), so a slow answer does not
      // also cost the group membership and a rebalance.
      const beat = heartbeat
        ? waitClock.setInterval(
            () => void heartbeat().catch(() => undefined),
            HEARTBEAT_WHILE_WAITING_MS,
          )
        : undefined;
      try {
        return await work();
      } finally {
        waitClock.clearTimeout(timer);
        waitClock.clearInterval(beat);
      }
    };
    try {
      const result = await retry(watched, {
        backoff: DEPENDENCY_RETRY_BACKOFF,
        clock: waitClock,
        signal,
        isRetriable: this.#o.isRetriable,
        ...(heartbeat ? { afterWait: heartbeat } : {}),
        onRetry: ({ error, tried, delayMs }) => {
          failed = true;
          const message = errorMessage(error);
          this.#o.onRetry?.(check);
          this.#o.onHealth?.(check, message);
          logger.warn('retrying', { check, attempt: tried, delayMs, err: message });
        },
      });
      if (failed) this.#o.onHealth?.(check, undefined);
      return result;
    } catch (err) {
      // A try that failed because the consumer is stopping: say so, not the try's own error
      // (the wait's own abort passes as it is).
      if (signal.aborted && !this.#o.isDataError(err) && err !== signal.reason) {
        throw new AppError('CANCELLED', 'consumer stopping', { cause: err });
      }
      throw err;
    }
  }
}
