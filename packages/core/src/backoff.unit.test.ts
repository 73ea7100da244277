import { describe, expect, it } from 'vitest';
import { backoffDelayMs, sleep } from './backoff.js';
import { SimulatedClock } from './time.js';

describe('backoffDelayMs', () => {
  const exact = { initialDelayMs: 100, maxDelayMs: 1_000, multiplier: 2, jitter: 0 };

  it('doubles from the initial delay and stops at the ceiling', () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, exact))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
  });

  it('jitter only shortens the wait, never below (1 - jitter) of the ceiling', () => {
    const options = { ...exact, jitter: 0.5 };
    expect(backoffDelayMs(2, options, () => 0)).toBe(400);
    expect(backoffDelayMs(2, options, () => 0.999999)).toBe(200);
  });
});

describe('sleep', () => {
  it('waits on the clock it is given', async () => {
    const clock = new SimulatedClock();
    let woke = false;
    const pending = sleep(1_000, undefined, clock).then(() => (woke = true));
    await clock.advanceAsync(999);
    expect(woke).toBe(false);
    await clock.advanceAsync(1);
    await pending;
    expect(clock.now()).toBe(1_000);
  });

  it('rejects with the abort reason instead of waiting', async () => {
    const controller = new AbortController();
    const pending = sleep(60_000, controller.signal);
    controller.abort(new Error('stopping'));
    await expect(pending).rejects.toThrow('stopping');
  });
});
