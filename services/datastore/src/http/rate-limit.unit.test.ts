import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '@candlestream/core';
import { createRateLimiter } from './rate-limit.js';

const START_MS = 1_700_000_000_000;

function drain(take: () => { ok: boolean }, times: number): boolean[] {
  return Array.from({ length: times }, () => take().ok);
}

describe('createRateLimiter', () => {
  it('allows a burst, then refuses with whole seconds until the next token', () => {
    const clock = new SimulatedClock(START_MS);
    const limiter = createRateLimiter({ requestsPerMinute: 2, burst: 3, clock });
    expect(limiter.limit).toBe(3);
    expect([1, 2, 3].map(() => limiter.take('a'))).toEqual([
      { ok: true, remaining: 2 },
      { ok: true, remaining: 1 },
      { ok: true, remaining: 0 },
    ]);
    // 2 per minute: one token every 30 s.
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterS: 30 });
    clock.advance(10_500);
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterS: 20 });
  });

  it('refills over simulated time, exactly when due, never beyond the burst', () => {
    const clock = new SimulatedClock(START_MS);
    const limiter = createRateLimiter({ requestsPerMinute: 2, burst: 2, clock });
    expect(drain(() => limiter.take('a'), 3)).toEqual([true, true, false]);
    clock.advance(29_999);
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterS: 1 });
    clock.advance(1);
    expect(limiter.take('a')).toEqual({ ok: true, remaining: 0 });
    clock.advance(60 * 60_000); // an hour idle refills to the burst, not 120 tokens
    expect(drain(() => limiter.take('a'), 3)).toEqual([true, true, false]);
  });

  it('defaults the burst to requestsPerMinute and keeps keys independent', () => {
    const clock = new SimulatedClock(START_MS);
    const limiter = createRateLimiter({ requestsPerMinute: 5, clock });
    expect(drain(() => limiter.take('a'), 6)).toEqual([true, true, true, true, true, false]);
    expect(limiter.take('b')).toEqual({ ok: true, remaining: 4 });
    expect(limiter.take('a').ok).toBe(false);
  });

  it('grants nothing extra when the clock steps backwards', () => {
    const clock = new SimulatedClock(START_MS);
    const limiter = createRateLimiter({ requestsPerMinute: 60, burst: 1, clock });
    expect(limiter.take('a').ok).toBe(true);
    clock.advance(-10_000);
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterS: 1 });
    clock.advance(1_000);
    expect(limiter.take('a').ok).toBe(true);
  });

  it('bounds tracked keys by evicting the least recently seen', () => {
    const clock = new SimulatedClock(START_MS);
    const limiter = createRateLimiter({ requestsPerMinute: 1, clock, maxClients: 2 });
    // burst 1: a tracked key is refused (empty bucket), a forgotten one starts full.
    expect(drain(() => limiter.take('a'), 1)).toEqual([true]);
    expect(drain(() => limiter.take('b'), 1)).toEqual([true]);
    expect(limiter.take('a').ok).toBe(false); // seen: 'b' is now the least recent
    expect(limiter.take('c').ok).toBe(true); // evicts 'b', not 'a' (LRU, not FIFO)
    expect(limiter.take('a').ok).toBe(false); // 'a' kept its empty bucket
    expect(limiter.take('b').ok).toBe(true); // forgotten; evicts 'c'
    expect(limiter.take('c').ok).toBe(true); // forgotten; evicts 'a'
    expect(limiter.take('a').ok).toBe(true); // forgotten too: only two keys are ever held
  });

  it('refuses nonsense options as INVALID_CONFIG', () => {
    for (const options of [
      { requestsPerMinute: 0 },
      { requestsPerMinute: Number.NaN },
      { requestsPerMinute: 10, burst: 1.5 },
      { requestsPerMinute: 10, maxClients: 0 },
    ]) {
      expect(() => createRateLimiter(options)).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG' }),
      );
    }
  });
});
