import { describe, expect, it } from 'vitest';
import { aggregateTicks, BarAggregator } from './aggregator.js';
import type { Bar } from './bars.js';
import { exactSum } from './exact-sum.js';
import type { Interval } from './intervals.js';
import { floorBucket } from './intervals.js';
import type { MarketSymbol } from './symbols.js';
import { makeTick, randomTicks, seededRandom, shuffled } from './testing.js';
import type { Tick } from './ticks.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0); // a minute boundary
const S = 1_000;
const BTC = 'BTC-USD' as MarketSymbol;
const ETH = 'ETH-USD' as MarketSymbol;

/** The obvious definition, written independently: sort, de-duplicate, group, pick. */
function naiveBars(ticks: Tick[], interval: Interval): Bar[] {
  const seen = new Set<string>();
  const unique = [...ticks]
    .sort((a, b) => a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .filter((t) => !seen.has(t.id) && seen.add(t.id));
  const groups = new Map<number, Tick[]>();
  for (const t of unique) {
    const key = floorBucket(t.ts, interval);
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([time, g]) => ({
      time,
      open: g[0]!.price,
      high: Math.max(...g.map((t) => t.price)),
      low: Math.min(...g.map((t) => t.price)),
      close: g[g.length - 1]!.price,
      volume: exactSum(g.map((t) => t.size)),
    }));
}

describe('BarAggregator', () => {
  it('builds open, high, low, close and volume from trades in order', () => {
    const agg = new BarAggregator({ interval: '1m' });
    agg.add(makeTick({ ts: T0 + 1 * S, price: 100, size: 1 }));
    agg.add(makeTick({ ts: T0 + 2 * S, price: 105, size: 2 }));
    agg.add(makeTick({ ts: T0 + 3 * S, price: 95, size: 0.5 }));
    const result = agg.add(makeTick({ ts: T0 + 4 * S, price: 101, size: 0.25 }));
    expect(result.status).toBe('applied');
    expect(result.events).toEqual([
      {
        v: 1,
        symbol: BTC,
        interval: '1m',
        bar: { time: T0, open: 100, high: 105, low: 95, close: 101, volume: 3.75 },
        final: false,
      },
    ]);
  });

  it('closes the bar when a trade lands exactly on the next boundary', () => {
    const agg = new BarAggregator({ interval: '1m' });
    agg.add(makeTick({ ts: T0 + 59_999, price: 100 }));
    const result = agg.add(makeTick({ ts: T0 + 60_000, price: 200 }));
    expect(result.events.map((e) => [e.bar.time, e.final, e.bar.close])).toEqual([
      [T0, true, 100],
      [T0 + 60_000, false, 200],
    ]);
    expect(agg.forming(BTC)?.time).toBe(T0 + 60_000);
  });

  it('lets an out-of-order trade inside the open bar set the open but never move the close', () => {
    const agg = new BarAggregator({ interval: '1m' });
    agg.add(makeTick({ ts: T0 + 10 * S, price: 100 }));
    agg.add(makeTick({ ts: T0 + 50 * S, price: 110 }));
    agg.add(makeTick({ ts: T0 + 20 * S, price: 90 })); // late arrival, earlier than the close
    expect(agg.forming(BTC)).toMatchObject({ open: 100, close: 110, low: 90, high: 110 });
    agg.add(makeTick({ ts: T0 + 5 * S, price: 95 })); // earlier than the open
    expect(agg.forming(BTC)).toMatchObject({ open: 95, close: 110, low: 90, high: 110 });
  });

  it('breaks same-millisecond ties by trade id, not by arrival', () => {
    const build = (order: Tick[]): Bar | undefined => {
      const agg = new BarAggregator({ interval: '1m' });
      for (const t of order) agg.add(t);
      return agg.forming(BTC);
    };
    const a = makeTick({ ts: T0 + S, price: 10, id: 'a' });
    const b = makeTick({ ts: T0 + S, price: 20, id: 'b' });
    expect(build([a, b])).toMatchObject({ open: 10, close: 20 });
    expect(build([b, a])).toMatchObject({ open: 10, close: 20 });
  });

  it('ignores a duplicate trade id and reports it', () => {
    const agg = new BarAggregator({ interval: '1m' });
    const trade = makeTick({ ts: T0 + S, price: 100, size: 2, id: 'dup' });
    agg.add(trade);
    const again = agg.add({ ...trade });
    const resent = agg.add({ ...trade, price: 999, size: 50 }); // same id, different body
    expect(again).toEqual({ status: 'duplicate', events: [] });
    expect(resent.status).toBe('duplicate');
    expect(agg.forming(BTC)).toMatchObject({ open: 100, high: 100, close: 100, volume: 2 });
  });

  it('refuses a trade for a closed bucket as late, changing nothing', () => {
    const agg = new BarAggregator({ interval: '1m' });
    agg.add(makeTick({ ts: T0 + S, price: 100 }));
    agg.add(makeTick({ ts: T0 + 61 * S, price: 101 }));
    const late = agg.add(makeTick({ ts: T0 + 2 * S, price: 50 }));
    expect(late).toEqual({ status: 'late', events: [] });
    expect(agg.openBars(BTC).map((b) => b.time)).toEqual([T0 + 60 * S]);
  });

  it('keeps a bucket open for the allowed lateness, then closes it', () => {
    const agg = new BarAggregator({ interval: '1m', allowedLatenessMs: 30 * S });
    agg.add(makeTick({ ts: T0 + S, price: 100 }));
    const next = agg.add(makeTick({ ts: T0 + 70 * S, price: 101 }));
    expect(next.events.every((e) => !e.final)).toBe(true);
    const amend = agg.add(makeTick({ ts: T0 + 2 * S, price: 80 }));
    expect(amend.status).toBe('applied');
    expect(amend.events).toEqual([
      expect.objectContaining({
        final: false,
        bar: expect.objectContaining({ time: T0, low: 80 }),
      }),
    ]);
    const closing = agg.add(makeTick({ ts: T0 + 90 * S, price: 102 }));
    expect(closing.events[0]).toMatchObject({
      final: true,
      bar: { time: T0, open: 100, low: 80, close: 80 },
    });
    expect(agg.add(makeTick({ ts: T0 + 3 * S, price: 1 })).status).toBe('late');
  });

  it('closes bars by clock time when the market is quiet', () => {
    const agg = new BarAggregator({ interval: '1m' });
    agg.add(makeTick({ ts: T0 + S, price: 100 }));
    agg.add(makeTick({ ts: T0 + S, price: 200, symbol: ETH }));
    expect(agg.advance(T0 + 59 * S)).toEqual([]);
    const closed = agg.advance(T0 + 60 * S);
    expect(closed.map((e) => [e.symbol, e.bar.time, e.final])).toEqual([
      [BTC, T0, true],
      [ETH, T0, true],
    ]);
    expect(agg.advance(T0 + 60 * S)).toEqual([]);
    expect(agg.add(makeTick({ ts: T0 + 2 * S, price: 1 })).status).toBe('late');
    // A symbol first seen after the clock moved is held to the same line.
    expect(
      agg.add(makeTick({ ts: T0 + 2 * S, price: 1, symbol: 'SOL-USD' as MarketSymbol })).status,
    ).toBe('late');
  });

  it('keeps symbols apart', () => {
    const agg = new BarAggregator({ interval: '1m' });
    agg.add(makeTick({ ts: T0 + S, price: 100 }));
    agg.add(makeTick({ ts: T0 + 61 * S, price: 3000, symbol: ETH }));
    expect(agg.forming(BTC)).toMatchObject({ time: T0, close: 100 });
    expect(agg.forming(ETH)).toMatchObject({ time: T0 + 60 * S, close: 3000 });
    expect(agg.symbols().sort()).toEqual([BTC, ETH]);
  });

  it('hands out copies of its bars', () => {
    const agg = new BarAggregator({ interval: '1m' });
    agg.add(makeTick({ ts: T0 + S, price: 100 }));
    const bar = agg.forming(BTC)!;
    bar.close = -1;
    expect(agg.forming(BTC)?.close).toBe(100);
    expect(agg.forming(ETH)).toBeUndefined();
  });

  it('gives a bit-identical volume whatever order the same trades arrive in', () => {
    const ticks = randomTicks({ seed: 3, count: 500, from: T0, spanMs: 60 * S });
    const random = seededRandom(9);
    const volumes = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const agg = new BarAggregator({ interval: '1m' });
      for (const t of shuffled(ticks, random)) agg.add(t);
      volumes.add(agg.forming(BTC)!.volume);
    }
    expect([...volumes]).toEqual([exactSum(ticks.map((t) => t.size))]);
  });

  it('refuses a negative lateness', () => {
    expect(() => new BarAggregator({ interval: '1m', allowedLatenessMs: -1 })).toThrow(RangeError);
  });
});

describe('aggregateTicks', () => {
  it('equals the naive definition for shuffled trades with duplicates and ties, at every interval', () => {
    const ticks = randomTicks({
      seed: 11,
      count: 3_000,
      from: Date.UTC(2024, 11, 28),
      spanMs: 10 * 86_400_000, // crosses a year and several weeks
      symbols: [BTC, ETH],
      tsStepMs: 1_000, // many trades share a timestamp
    });
    const random = seededRandom(5);
    const withDuplicates = shuffled([...ticks, ...ticks.slice(0, 300)], random);
    for (const interval of ['1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w'] as const) {
      const bars = aggregateTicks(withDuplicates, interval);
      for (const symbol of [BTC, ETH]) {
        expect(bars.get(symbol), `${symbol} ${interval}`).toEqual(
          naiveBars(
            ticks.filter((t) => t.symbol === symbol),
            interval,
          ),
        );
      }
    }
  });
});
