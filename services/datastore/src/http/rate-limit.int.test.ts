/** Limits shared through real Redis, as several datastore replicas share them. */
import { createRedis } from '@candlestream/cache';
import { silentLogger } from '@candlestream/logger';
import { needServices, uniqueName, waitUntil } from '@candlestream/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { createRateLimiter } from './rate-limit.js';

const services = needServices(['redis']);
type Redis = ReturnType<typeof createRedis>;

describe.skipIf(services.skip)('rate limits in Redis', () => {
  const clients: Redis[] = [];
  const unreachable = (url: string): Redis => {
    const client = createRedis(url, silentLogger());
    clients.push(client);
    return client;
  };
  /** Connected: until then a limiter counts in memory (see the last test). */
  const redis = async (): Promise<Redis> => {
    const client = unreachable(services.get('redis').url);
    await client.ping();
    return client;
  };
  afterAll(() => Promise.all(clients.map((c) => c.quit().catch(() => undefined))));

  it('one budget per client across replicas', async () => {
    const keyPrefix = `${uniqueName('rl')}:`;
    const replicaA = createRateLimiter({ requestsPerMinute: 5, redis: await redis(), keyPrefix });
    const replicaB = createRateLimiter({ requestsPerMinute: 5, redis: await redis(), keyPrefix });
    const seen = [];
    for (const limiter of [replicaA, replicaB, replicaA, replicaB, replicaA, replicaB]) {
      seen.push(await limiter.take('ip:10.0.0.1'));
    }
    expect(seen.map((r) => r.ok)).toEqual([true, true, true, true, true, false]);
    expect(seen[4]).toEqual({ ok: true, remaining: 0 });
    expect((await replicaA.take('ip:10.0.0.2')).ok).toBe(true);
    // Another deployment on the same Redis (another prefix) has budgets of its own.
    const other = createRateLimiter({
      requestsPerMinute: 5,
      redis: await redis(),
      keyPrefix: `${uniqueName('rl')}:`,
    });
    expect(await other.take('ip:10.0.0.1')).toEqual({ ok: true, remaining: 4 });
  });

  it('gives a client its budget again when the window ends', async () => {
    const limiter = createRateLimiter({
      requestsPerMinute: 1,
      windowMs: 1_000,
      redis: await redis(),
      keyPrefix: `${uniqueName('rl')}:`,
    });
    expect((await limiter.take('sub:alice')).ok).toBe(true);
    expect(await limiter.take('sub:alice')).toEqual({ ok: false, retryAfterS: 1 });
    await waitUntil('the window to end', async () => (await limiter.take('sub:alice')).ok, 5_000);
  });

  it('counts in memory while Redis is unreachable, instead of failing or lifting the limit', async () => {
    const limiter = createRateLimiter({
      requestsPerMinute: 2,
      redis: unreachable('redis://127.0.0.1:1'),
      keyPrefix: `${uniqueName('rl')}:`,
    });
    const results = [];
    for (let i = 0; i < 3; i++) results.push((await limiter.take('ip:10.0.0.3')).ok);
    expect(results).toEqual([true, true, false]);
  });
});
