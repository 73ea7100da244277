import type { BarChunkCache } from '@candlestream/cache';
import { MemoryLiveBarStore } from '@candlestream/cache';
import type { BarUpdate, Interval, MarketSymbol } from '@candlestream/core';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { describe, expect, it } from 'vitest';
import { LiveView } from './live.js';

const T = Date.UTC(2026, 10, 8, 12, 0);
const BTC = 'BTC-USD' as MarketSymbol;

function update(interval: Interval, time: number, close: number, final = false): BarUpdate {
  const bar = { time, open: close, high: close, low: close, close, volume: 1 };
  return { v: 1, symbol: BTC, interval, bar, final };
}

function view(store = new MemoryLiveBarStore()) {
  const invalidated: string[] = [];
  const cache = {
    invalidate: (_s: MarketSymbol, interval: Interval, times: number[]) => {
      for (const t of times) invalidated.push(`${interval} ${new Date(t).toISOString()}`);
      return Promise.resolve();
    },
  } as unknown as BarChunkCache;
  const live = new LiveView({ store, cache, logger: silentLogger() });
  const heard: number[] = [];
  live.onUpdate((u) => heard.push(u.bar.close));
  return { live, heard, invalidated };
}

/** A week of backfilled history before T, as the dynamic consumer publishes it: closed bars, final. */
function backfilled(): BarUpdate[] {
  const out: BarUpdate[] = [];
  for (let t = T - 7 * DAY_MS; t < T - DAY_MS; t += HOUR_MS) out.push(update('1h', t, 50, true));
  for (let t = T - DAY_MS; t < T - DAY_MS + 60 * MINUTE_MS; t += MINUTE_MS)
    out.push(update('1m', t, 50, true));
  return out;
}

describe('LiveView and backfilled finals', () => {
  it('regression guard: finals of a backfilled range drop cached chunks but are neither the current bar nor sent to /stream', async () => {
    const { live, heard, invalidated } = view();
    await live.ingest([update('1m', T, 100), update('1h', T, 100)]);
    await live.ingest(backfilled());
    await live.ingest([update('1m', T, 101)]);
    expect(heard).toEqual([100, 100, 101]);
    expect((await live.current(BTC, '1m'))?.bar.close).toBe(101);
    expect((await live.current(BTC, '1h'))?.bar.close).toBe(100);
    expect(invalidated).toHaveLength(backfilled().length);
    expect(invalidated).toContain(`1m ${new Date(T - DAY_MS).toISOString()}`);
    expect(live.historical).toBe(backfilled().length);
  });

  it('a live final after the next bar formed (allowed lateness) is still live', async () => {
    const { live, heard } = view();
    await live.ingest([update('1m', T, 100), update('1m', T + MINUTE_MS, 101)]);
    await live.ingest([update('1m', T, 102, true), update('1h', T - HOUR_MS, 103, true)]);
    expect(heard).toEqual([100, 101, 102, 103]);
  });

  it('a symbol not yet seen since start takes its newest bar from the live store', async () => {
    const store = new MemoryLiveBarStore();
    await store.put([update('1m', T, 100)]);
    const { live, heard } = view(store);
    await live.ingest(backfilled());
    expect(heard).toEqual([]);
    expect((await live.current(BTC, '1m'))?.bar.close).toBe(100);
  });
});
