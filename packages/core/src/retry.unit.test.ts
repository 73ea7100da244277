import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { retry } from './retry.js';
import { SimulatedClock } from './time.js';

const quick = { initialDelayMs: 1, maxDelayMs: 2, jitter: 0 };

/** Runs `work` to its end on a simulated clock, firing each backoff as soon as it is set. */
async function onSimulatedTime<T>(work: (clock: SimulatedClock) => Promise<T>): Promise<T> {
  const clock = new SimulatedClock();
  const result = work(clock);
  result.catch(() => undefined);
  await clock.runAllAsync();
  return result;
}

describe('retry', () => {
  it('tries again after retriable failures, telling each one, and returns the success', async () => {
    let calls = 0;
    const told: number[] = [];
    let waitedOut = 0;
    const result = await onSimulatedTime((clock) =>
      retry(
        () =>
          ++calls < 3 ? Promise.reject(new AppError('UNAVAILABLE', 'down')) : Promise.resolve('ok'),
        {
          backoff: quick,
          clock,
          onRetry: ({ tried }) => told.push(tried),
          afterWait: () => Promise.resolve(void waitedOut++),
        },
      ),
    );
    expect(result).toBe('ok');
    expect(told).toEqual([1, 2]);
    expect(waitedOut).toBe(2);
  });

  it('stops at once on an error that is not retriable, and after maxAttempts', async () => {
    let calls = 0;
    const refused = new AppError('INVALID_ARGUMENT', 'no');
    await expect(retry(() => Promise.reject(refused), { backoff: quick })).rejects.toBe(refused);
    await expect(
      onSimulatedTime((clock) =>
        retry(() => (calls++, Promise.reject(new AppError('UNAVAILABLE', 'down'))), {
          backoff: quick,
          clock,
          maxAttempts: 3,
        }),
      ),
    ).rejects.toThrow('down');
    expect(calls).toBe(3);
    const custom = new Error('data');
    await expect(
      retry(() => Promise.reject(custom), { backoff: quick, isRetriable: () => false }),
    ).rejects.toBe(custom);
  });

  it('an abort ends the wait with the signal reason', async () => {
    const controller = new AbortController();
    const reason = new Error('stopping');
    const clock = new SimulatedClock();
    const pending = retry(() => Promise.reject(new AppError('UNAVAILABLE', 'down')), {
      backoff: { initialDelayMs: 60_000, maxDelayMs: 60_000, jitter: 0 },
      clock,
      signal: controller.signal,
    });
    const rejected = expect(pending).rejects.toBe(reason);
    clock.setTimeout(() => controller.abort(reason), 5);
    await clock.advanceAsync(5);
    await rejected;
    expect(clock.now()).toBe(5); // the 60 s backoff was never waited out
    expect(clock.pendingTimers).toBe(0);
  });
});
