import type { Bar, MarketSymbol, Tick } from '@candlestream/core';
import { aggregateTicks, decodeTick, encodeTick, seededRandom } from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import { expandMinute, ZERO_VOLUME_TRADE_SIZE } from './expand.js';
import { compareReplay, MinHeap } from './order.js';

const BTC = 'BTC-USD' as MarketSymbol;
const MINUTE = Date.UTC(2024, 2, 4, 12, 7);

function oneMinute(trades: Tick[]): Bar | undefined {
  const bars = aggregateTicks(trades, '1m').get(BTC) ?? [];
  expect(bars).toHaveLength(1);
  return bars[0];
}

describe('expandMinute', () => {
  it('reproduces rising and falling candles exactly through the core aggregator', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 2_000; i++) {
      const a = 100 + random() * 10;
      const b = 100 + random() * 10;
      const open = i % 2 ? Math.min(a, b) : Math.max(a, b);
      const close = i % 2 ? Math.max(a, b) : Math.min(a, b);
      const bar: Bar = {
        time: MINUTE,
        open,
        high: Math.max(a, b) + random(),
        low: Math.min(a, b) - random(),
        close: i % 7 === 0 ? open : close,
        volume: random() * 1_000,
      };
      const trades = expandMinute(BTC, bar);
      expect(oneMinute(trades)).toEqual(bar);
      // Exact in plain floating point too, summed in replay order.
      expect(trades.reduce((sum, t) => sum + t.size, 0)).toBe(bar.volume);
    }
  });

  it('puts the low before the high in a rising minute and the high first in a falling one', () => {
    const rising = expandMinute(BTC, {
      time: MINUTE,
      open: 10,
      high: 12,
      low: 9,
      close: 11,
      volume: 8,
    });
    expect(rising.map((t) => t.price)).toEqual([10, 9, 12, 11]);
    expect(rising.map((t) => t.ts - MINUTE)).toEqual([0, 15_000, 30_000, 45_000]);
    expect(rising.map((t) => t.size)).toEqual([1, 1, 2, 4]);
    expect(rising.map((t) => t.id)).toEqual([0, 1, 2, 3].map((k) => `replay-${MINUTE}-${k}`));
    const falling = expandMinute(BTC, {
      time: MINUTE,
      open: 11,
      high: 12,
      low: 9,
      close: 10,
      volume: 8,
    });
    expect(falling.map((t) => t.price)).toEqual([11, 12, 9, 10]);
  });

  it('gives a zero-volume candle trades of the smallest positive size, which the wire accepts', () => {
    const bar: Bar = { time: MINUTE, open: 5, high: 5, low: 5, close: 5, volume: 0 };
    const trades = expandMinute(BTC, bar);
    expect(trades.every((t) => t.size === ZERO_VOLUME_TRADE_SIZE && t.size > 0)).toBe(true);
    for (const t of trades) expect(decodeTick(encodeTick(t))).toEqual({ ok: true, value: t });
    expect(oneMinute(trades)).toEqual({ ...bar, volume: 4 * Number.MIN_VALUE });
  });

  it('emits valid wire trades with side unknown and source replay', () => {
    const trades = expandMinute(BTC, {
      time: MINUTE,
      open: 1.5,
      high: 2,
      low: 1,
      close: 1.75,
      volume: 0.3,
    });
    for (const t of trades) {
      expect(decodeTick(encodeTick(t))).toEqual({ ok: true, value: t });
      expect(t).toMatchObject({ side: 'unknown', source: 'replay', symbol: BTC });
    }
  });
});

describe('replay order', () => {
  it('sorts by ts, then id in code-unit order, then symbol', () => {
    const key = (ts: number, id: string, symbol: string) => ({
      ts,
      id,
      symbol: symbol as MarketSymbol,
    });
    const keys = [
      key(2, 'a', 'BTC-USD'),
      key(1, 'b', 'BTC-USD'),
      key(1, 'a', 'ETH-USD'),
      key(1, 'a', 'BTC-USD'),
      key(1, 'B', 'BTC-USD'),
      key(1, '_', 'BTC-USD'),
    ];
    const heap = new MinHeap(compareReplay);
    for (const k of keys) heap.push(k);
    const out = [];
    while (heap.size > 0) out.push(heap.pop());
    expect(out).toEqual([
      key(1, 'B', 'BTC-USD'),
      key(1, '_', 'BTC-USD'),
      key(1, 'a', 'BTC-USD'),
      key(1, 'a', 'ETH-USD'),
      key(1, 'b', 'BTC-USD'),
      key(2, 'a', 'BTC-USD'),
    ]);
    expect([...keys].sort(compareReplay)).toEqual(out);
  });
});
