import { describe, expect, it } from 'vitest';
import { createRateLimiter } from './rate-limit.js';

async function drain(take: () => Promise<{ ok: boolean }>, times: number): Promise<boolean[]> {
  const out: boolean[] = [];
  for (let i = 0; i < times; i++) out.push((await take()).ok);
  return out;
}

describe('createRateLimiter (in memory)', () => {
  it('allows requestsPerMinute per client, then refuses with whole seconds until the window ends', async () => {
    const limiter = createRateLimiter({ requestsPerMinute: 3 });
    expect(limiter.limit).toBe(3);
    expect([await limiter.take('a'), await limiter.take('a'), await limiter.take('a')]).toEqual([
      { ok: true, remaining: 2 },
      { ok: true, remaining: 1 },
      { ok: true, remaining: 0 },
    ]);
    const refused = await limiter.take('a');
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      expect(Number.isInteger(refused.retryAfterS)).toBe(true);
      expect(refused.retryAfterS).toBeGreaterThanOrEqual(59);
      expect(refused.retryAfterS).toBeLessThanOrEqual(60);
    }
  });

  it('keeps each client to its own budget', async () => {
    const limiter = createRateLimiter({ requestsPerMinute: 5 });
    expect(await drain(() => limiter.take('a'), 6)).toEqual([true, true, true, true, true, false]);
    expect(await limiter.take('b')).toEqual({ ok: true, remaining: 4 });
    expect((await limiter.take('a')).ok).toBe(false);
  });

  it('refuses nonsense options as INVALID_CONFIG', () => {
    for (const options of [
      { requestsPerMinute: 0 },
      { requestsPerMinute: Number.NaN },
      { requestsPerMinute: 1.5 },
      { requestsPerMinute: 10, windowMs: 0 },
    ]) {
      expect(() => createRateLimiter(options)).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG' }),
      );
    }
  });
});
