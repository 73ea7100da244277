import type { Bar, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { MINUTE_MS } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { createTestRedis, needServices, waitUntil } from '@candlestream/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BarChunkCache, MAX_MISSED_INVALIDATIONS, chunkSpanMs, chunkStart } from './bar-chunks.js';
import { RedisGate } from './redis-gate.js';

const services = needServices(['redis']);
const BTC = 'BTC-USD' as MarketSymbol;
const DAY0 = Date.UTC(2026, 0, 5);

/** A storage stand-in with one bar per minute, counting reads (the unit under test is the cache). */
function storage() {
  const calls: [EpochMs, EpochMs][] = [];
  let bump = 0;
  const load = (_s: MarketSymbol, _i: Interval, from: EpochMs, to: EpochMs): Promise<Bar[]> => {
    calls.push([from, to]);
    const bars: Bar[] = [];
    for (let t = from; t < to; t += MINUTE_MS) {
      bars.push({
        time: t,
        open: 1 + bump,
        high: 2 + bump,
        low: 1,
        close: 1.5,
        volume: t / MINUTE_MS,
      });
    }
    return Promise.resolve(bars);
  };
  return { calls, load, change: () => (bump += 10) };
}

describe.skipIf(services.skip)('BarChunkCache', () => {
  let redis: Awaited<ReturnType<typeof createTestRedis>>;
  let raw: Redis;
  beforeAll(async () => {
    redis = await createTestRedis(services.get('redis').url, 'bar-chunks');
    raw = new Redis(services.get('redis').url);
  });
  afterAll(async () => {
    raw.disconnect();
    await redis.close();
  });

  it('aligns chunks to a day of minutes', () => {
    expect(chunkSpanMs('1m')).toBe(1_440 * MINUTE_MS);
    expect(chunkStart(DAY0 + 5 * MINUTE_MS, '1m')).toBe(DAY0);
    expect(new Date(chunkStart(DAY0 + 3 * 86_400_000, '1w')).getUTCDay()).toBe(1);
  });

  it('serves closed days from Redis after one storage read, and the open part from storage', async () => {
    const db = storage();
    const cache = new BarChunkCache({
      redis: raw,
      prefix: redis.prefix,
      load: db.load,
      logger: silentLogger(),
    });
    const from = DAY0 + 30 * MINUTE_MS;
    const to = DAY0 + 2 * 1_440 * MINUTE_MS + 90 * MINUTE_MS;
    const closedBefore = DAY0 + 2 * 1_440 * MINUTE_MS + 60 * MINUTE_MS; // day 3 still open
    const first = await cache.read(BTC, '1m', from, to, closedBefore);
    expect(first.map((b) => b.time)).toEqual(
      Array.from({ length: (to - from) / MINUTE_MS }, (_, i) => from + i * MINUTE_MS),
    );
    expect(db.calls).toEqual([
      [DAY0, DAY0 + 2 * 1_440 * MINUTE_MS],
      [DAY0 + 2 * 1_440 * MINUTE_MS, to],
    ]);
    const again = await cache.read(BTC, '1m', from, to, closedBefore);
    expect(again).toEqual(first);
    // Only the open day went back to storage.
    expect(db.calls.slice(2)).toEqual([[DAY0 + 2 * 1_440 * MINUTE_MS, to]]);
    expect(cache.stats).toMatchObject({ hits: 2, misses: 2, errors: 0 });
  });

  it('invalidate drops the chunk holding a changed bar, so the next read sees storage', async () => {
    const db = storage();
    const cache = new BarChunkCache({
      redis: raw,
      prefix: `${redis.prefix}inv:`,
      load: db.load,
      logger: silentLogger(),
    });
    const to = DAY0 + 1_440 * MINUTE_MS;
    await cache.read(BTC, '1m', DAY0, to, to);
    db.change();
    expect((await cache.read(BTC, '1m', DAY0, to, to))[7]!.open).toBe(1);
    await cache.invalidate(BTC, '1m', [DAY0 + 7 * MINUTE_MS]);
    expect((await cache.read(BTC, '1m', DAY0, to, to))[7]!.open).toBe(11);
  });

  it('a Redis that is down degrades to storage, never to an error', async () => {
    const db = storage();
    const dead = new Redis('redis://127.0.0.1:1', {
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      enableOfflineQueue: false,
    });
    const cache = new BarChunkCache({
      redis: dead,
      prefix: 'x:',
      load: db.load,
      logger: silentLogger(),
    });
    const to = DAY0 + 1_440 * MINUTE_MS;
    expect(await cache.read(BTC, '1m', DAY0, to, to)).toHaveLength(1_440);
    expect(cache.stats.errors).toBeGreaterThan(0);
    dead.disconnect();
  });

  /** A cache behind a real gate on the real Redis, with a quick ping so recovery is prompt. */
  function gated(prefix: string) {
    const db = storage();
    const gate = new RedisGate({ redis: raw, logger: silentLogger(), retryMs: 50 });
    const cache = new BarChunkCache({
      redis: raw,
      prefix,
      load: db.load,
      logger: silentLogger(),
      gate,
    });
    return { db, gate, cache };
  }

  it('regression: an invalidation made while Redis was skipped is not lost; the stale day is not served after it answers', async () => {
    const { db, gate, cache } = gated(`${redis.prefix}missed:`);
    try {
      const to = DAY0 + 1_440 * MINUTE_MS;
      await cache.read(BTC, '1m', DAY0, to, to); // the day is cached
      db.change(); // a late trade corrects a bar in storage...
      gate.fail(new Error('test: redis away'));
      await cache.invalidate(BTC, '1m', [DAY0 + 7 * MINUTE_MS]); // ...whose final cannot reach Redis
      expect(cache.missedInvalidations).toBe(1);
      expect((await cache.read(BTC, '1m', DAY0, to, to))[7]!.open).toBe(11); // storage meanwhile
      await waitUntil('redis used again', () => gate.available, 10_000);
      await waitUntil('invalidation caught up', () => cache.missedInvalidations === 0, 10_000);
      // Before, the copy cached before the outage was served again until its 7-day TTL.
      expect((await cache.read(BTC, '1m', DAY0, to, to))[7]!.open).toBe(11);
    } finally {
      gate.close();
    }
  });

  it('more missed invalidations than it can remember: every chunk of the prefix is dropped when Redis answers', async () => {
    const { db, gate, cache } = gated(`${redis.prefix}overflow:`);
    try {
      const to = DAY0 + 1_440 * MINUTE_MS;
      await cache.read(BTC, '1m', DAY0, to, to);
      db.change();
      gate.fail(new Error('test: redis away'));
      // Chunks on other days than DAY0: only the drop-everything path can reach DAY0's copy.
      const times = Array.from(
        { length: MAX_MISSED_INVALIDATIONS + 1 },
        (_, i) => DAY0 + (i + 1) * 1_440 * MINUTE_MS,
      );
      await cache.invalidate(BTC, '1m', times);
      expect(cache.missedInvalidations).toBe('all');
      await waitUntil('caught up', () => cache.missedInvalidations === 0, 10_000);
      expect(await raw.exists(cache.key(BTC, '1m', DAY0))).toBe(0);
      expect((await cache.read(BTC, '1m', DAY0, to, to))[7]!.open).toBe(11);
    } finally {
      gate.close();
    }
  });
});
