import type { BarUpdate, Interval, MarketSymbol } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { createTestRedis, needServices } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveBarStore } from './live-bars.js';
import { MemoryLiveBarStore, RedisLiveBarStore } from './live-bars.js';
import { createRedis } from './redis.js';

const services = needServices(['redis']);
const BTC = 'BTC-USD' as MarketSymbol;

function update(interval: Interval, time: number, close: number, final = false): BarUpdate {
  return {
    v: 1,
    symbol: BTC,
    interval,
    bar: { time, open: 1, high: Math.max(1, close), low: Math.min(1, close), close, volume: 2 },
    final,
  };
}

describe.skipIf(services.skip)('live bar stores', () => {
  let cleanup: () => Promise<void> = () => Promise.resolve();
  const stores: [string, () => Promise<LiveBarStore>][] = [
    ['memory', () => Promise.resolve(new MemoryLiveBarStore())],
    [
      'redis',
      async () => {
        const test = await createTestRedis(services.get('redis').url, 'live-bars');
        cleanup = () => test.close();
        return new RedisLiveBarStore(
          createRedis(services.get('redis').url, silentLogger()),
          test.prefix,
        );
      },
    ],
  ];

  afterAll(() => cleanup());

  describe.each(stores)('%s', (_kind, make) => {
    let store: LiveBarStore;
    beforeAll(async () => {
      store = await make();
    });
    afterAll(() => store.close());

    it('keeps the newest bar per interval; an older redelivered update never regresses it', async () => {
      await store.put([update('1m', 60_000, 5), update('1m', 120_000, 6), update('5m', 0, 7)]);
      await store.put([update('1m', 60_000, 99, true)]);
      expect(await store.get(BTC, '1m')).toEqual(update('1m', 120_000, 6));
      expect(await store.get(BTC, '5m')).toEqual(update('5m', 0, 7));
      expect(await store.get(BTC, '1h')).toBeUndefined();
    });

    it('a final update replaces the forming twin, but a forming one does not undo a final', async () => {
      await store.put([update('15m', 0, 3)]);
      await store.put([update('15m', 0, 4, true)]);
      await store.put([update('15m', 0, 5)]);
      expect(await store.get(BTC, '15m')).toEqual(update('15m', 0, 4, true));
    });
  });
});
