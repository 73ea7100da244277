import { EventEmitter } from 'node:events';
import { AppError, SimulatedClock } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RedisGate } from './redis-gate.js';

const RETRY_MS = 5_000;

/** Just what the gate uses of an ioredis client: `status`, `ping`, the `error` event. */
class FakeRedis extends EventEmitter {
  status = 'ready';
  answers = false;
  pings = 0;
  ping(): Promise<string> {
    this.pings += 1;
    return this.answers ? Promise.resolve('PONG') : Promise.reject(new Error('Command timed out'));
  }
}

function gateOn(redis: FakeRedis, clock: SimulatedClock): RedisGate {
  return new RedisGate({
    redis: redis as unknown as Redis,
    logger: silentLogger(),
    clock,
    retryMs: RETRY_MS,
  });
}

describe('RedisGate', () => {
  it('after one failure skips Redis at once, until a ping answers', async () => {
    const clock = new SimulatedClock(0);
    const redis = new FakeRedis();
    const gate = gateOn(redis, clock);
    const seen: (string | undefined)[] = [];
    gate.watch((problem) => seen.push(problem));

    expect(await gate.run(() => Promise.resolve('hit'))).toBe('hit');
    await expect(gate.run(() => Promise.reject(new Error('Command timed out')))).rejects.toThrow(
      'Command timed out',
    );
    expect(gate.available).toBe(false);
    let called = false;
    const skipped = await gate
      .run(() => {
        called = true;
        return Promise.resolve('hit');
      })
      .catch((err: unknown) => err);
    expect(called).toBe(false);
    expect(AppError.is(skipped, 'UNAVAILABLE')).toBe(true);

    await clock.advanceAsync(RETRY_MS); // the ping fails: still skipped, tried again later
    expect(redis.pings).toBe(1);
    expect(gate.available).toBe(false);
    redis.answers = true;
    await clock.advanceAsync(RETRY_MS);
    expect(redis.pings).toBe(2);
    expect(gate.available).toBe(true);
    expect(seen).toEqual(['redis unavailable: Command timed out', undefined]);
    gate.close();
  });

  it("trips on the client's error event, and tells a late watcher at once", () => {
    const clock = new SimulatedClock(0);
    const redis = new FakeRedis();
    const gate = gateOn(redis, clock);
    redis.status = 'reconnecting';
    redis.emit('error', new Error('connect ECONNREFUSED 127.0.0.1:1'));
    const seen: (string | undefined)[] = [];
    gate.watch((problem) => seen.push(problem));
    expect(seen).toEqual(['redis unavailable: connect ECONNREFUSED 127.0.0.1:1']);
    gate.close();
    expect(clock.pendingTimers).toBe(0);
  });
});
