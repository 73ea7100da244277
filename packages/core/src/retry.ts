import type { BackoffOptions } from './backoff.js';
import { backoffDelayMs, sleep } from './backoff.js';
import { AppError } from './errors.js';
import { type Clock, systemClock } from './time.js';

export interface RetryOptions {
  /** Tries in all, the first included. Default: no limit. */
  maxAttempts?: number;
  backoff?: BackoffOptions;
  random?: () => number;
  /** Whose timers the waits run on. Default systemClock; tests pass a SimulatedClock. */
  clock?: Clock;
  /** Aborting ends the wait at once (its reason is thrown) and stops further tries. */
  signal?: AbortSignal;
  /** Whether trying again may help. Default: the error's AppError `retriable` flag. */
  isRetriable?: (error: unknown) => boolean;
  /** Told of each failure that will be retried, before the wait. */
  onRetry?: (failure: { error: unknown; tried: number; delayMs: number }) => void;
  /** Runs after each wait, before the next try (a heartbeat); its own failure is ignored. */
  afterWait?: () => Promise<void>;
}

/**
 * Runs `work` until it succeeds, fails with an error that is not retriable, has failed
 * `maxAttempts` times, or the signal aborts; waits an exponential backoff between tries. Throws
 * the last error as it was thrown.
 */
export async function retry<T>(work: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
  const isRetriable = options.isRetriable ?? ((error: unknown) => AppError.from(error).retriable);
  for (let tried = 1; ; tried++) {
    try {
      return await work();
    } catch (error) {
      if (!isRetriable(error) || tried >= maxAttempts || options.signal?.aborted) throw error;
      const delayMs = backoffDelayMs(tried - 1, options.backoff, options.random);
      options.onRetry?.({ error, tried, delayMs });
      await sleep(delayMs, options.signal, options.clock ?? systemClock);
      await options.afterWait?.().catch(() => undefined);
    }
  }
}
