import { type Clock, systemClock } from './time.js';

/** Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"). */
export interface BackoffOptions {
  /** Delay ceiling of the first retry. */
  initialDelayMs: number;
  /** No retry waits longer than this. */
  maxDelayMs: number;
  /** Growth per attempt; 2 doubles. */
  multiplier?: number;
  /** 0 = exact delays (tests), 1 = full jitter: uniform in [0, ceiling]. Default 0.5. */
  jitter?: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  multiplier: 2,
  jitter: 0.5,
};

/**
 * The wait before retry number `attempt` (0 = first retry): the ceiling grows geometrically up
 * to `maxDelayMs`, and jitter spreads clients that failed together so they do not retry together.
 */
export function backoffDelayMs(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const multiplier = options.multiplier ?? 2;
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5));
  const ceiling = Math.min(
    options.maxDelayMs,
    options.initialDelayMs * multiplier ** Math.max(0, attempt),
  );
  return Math.round(ceiling * (1 - jitter * random()));
}

/**
 * Resolves after `ms` on `clock`, or rejects with the signal's reason as soon as it aborts, so a
 * stopping service never waits out a backoff. Tests pass a SimulatedClock and advance it.
 */
export function sleep(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
