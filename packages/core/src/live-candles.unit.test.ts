import { describe, expect, it } from 'vitest';
import { aggregateTicks } from './aggregator.js';
import type { Bar, BarUpdate } from './bars.js';
import type { Interval } from './intervals.js';
import { INTERVALS, floorBucket } from './intervals.js';
import { coalesceUpdates, LiveCandles } from './live-candles.js';
import { diffBars } from './series.js';
import type { MarketSymbol } from './symbols.js';
import { makeTick, randomTicks, seededRandom } from './testing.js';
import type { Tick } from './ticks.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from './time.js';

const BTC = 'BTC-USD' as MarketSymbol;
const ETH = 'ETH-USD' as MarketSymbol;
const T0 = Date.UTC(2024, 0, 1); // a Monday
/** Higher volumes are sums of minute volumes: equal to the one-rounding oracle within rounding. */
const VOLUME_REL_TOL = 1e-12;

/** The last update per (symbol, interval, bar time): what a listener ends up with. */
function latest(events: readonly BarUpdate[]): Map<string, BarUpdate> {
  const out = new Map<string, BarUpdate>();
  for (const e of events) out.set(`${e.symbol} ${e.interval} ${e.bar.time}`, e);
  return out;
}

function finals(events: readonly BarUpdate[], symbol: MarketSymbol, interval: Interval): Bar[] {
  return events
    .filter((e) => e.final && e.symbol === symbol && e.interval === interval)
    .map((e) => e.bar);
}

function expectSameBars(expected: readonly Bar[], actual: readonly Bar[], what: string): void {
  expect(diffBars(expected, actual, { volumeRelTol: VOLUME_REL_TOL }), what).toEqual([]);
}

describe('LiveCandles', () => {
  const ticks = randomTicks({
    seed: 7,
    count: 20_000,
    from: T0,
    spanMs: 3 * DAY_MS,
    symbols: [BTC, ETH],
  });

  it('closes every bar of every interval exactly as the batch aggregator computes it', () => {
    const live = new LiveCandles();
    const events: BarUpdate[] = [];
    for (const tick of ticks) events.push(...live.add(tick).events);
    for (const symbol of [BTC, ETH]) events.push(...live.advance(symbol, T0 + 30 * DAY_MS));
    for (const interval of INTERVALS) {
      const oracle = aggregateTicks(ticks, interval);
      for (const symbol of [BTC, ETH]) {
        const got = finals(events, symbol, interval);
        expectSameBars(oracle.get(symbol) ?? [], got, `${symbol} ${interval}`);
        // Each bar closes once, in order.
        expect(got.map((b) => b.time)).toEqual(
          [...new Set(got.map((b) => b.time))].sort((a, b) => a - b),
        );
      }
    }
  });

  it('keeps the forming bar of each interval equal to the oracle over the trades so far', () => {
    const live = new LiveCandles();
    const seen: Tick[] = [];
    const random = seededRandom(3);
    for (const tick of ticks.slice(0, 5_000)) {
      live.add(tick);
      seen.push(tick);
      if (random() > 0.01) continue;
      for (const interval of INTERVALS) {
        const bars = aggregateTicks(seen, interval).get(tick.symbol) ?? [];
        const forming = live.forming(tick.symbol, interval);
        expect(forming, interval).toBeDefined();
        expectSameBars([bars[bars.length - 1]!], [forming!], `forming ${interval}`);
      }
    }
  });

  it('ignores duplicates and late trades, and reports them as such', () => {
    const live = new LiveCandles();
    const first = makeTick({ symbol: BTC, ts: T0 + 1_000, price: 10, id: 'a' });
    expect(live.add(first).status).toBe('applied');
    expect(live.add({ ...first }).status).toBe('duplicate');
    expect(live.add(makeTick({ symbol: BTC, ts: T0 + MINUTE_MS, price: 11, id: 'b' })).status).toBe(
      'applied',
    );
    const late = live.add(makeTick({ symbol: BTC, ts: T0 + 2_000, price: 99, id: 'c' }));
    expect(late).toEqual({ status: 'late', events: [] });
    expect(live.forming(BTC, '5m')).toMatchObject({ open: 10, high: 11, close: 11, volume: 2 });
  });

  it('sends a higher bar final as soon as its last minute closes, before later updates', () => {
    const live = new LiveCandles();
    live.add(makeTick({ symbol: BTC, ts: T0 + 4 * MINUTE_MS, price: 10, id: 'a' }));
    const events = live.add(
      makeTick({ symbol: BTC, ts: T0 + 5 * MINUTE_MS, price: 12, id: 'b' }),
    ).events;
    const summary = events.map(
      (e) => `${e.interval}${e.final ? '!' : ''}@${(e.bar.time - T0) / MINUTE_MS}`,
    );
    expect(summary.slice(0, 3)).toEqual(['1m!@4', '5m!@0', '1m@5']);
    expect(summary).toContain('15m@0');
    expect(summary).not.toContain('15m!@0');
  });

  it('a quiet symbol closes on the clock; another symbol is not affected', () => {
    const live = new LiveCandles({ allowedLatenessMs: 2_000 });
    live.add(makeTick({ symbol: BTC, ts: T0 + 10_000, price: 10, id: 'a' }));
    live.add(makeTick({ symbol: ETH, ts: T0 + 10_000, price: 20, id: 'b' }));
    expect(live.advance(BTC, T0 + MINUTE_MS + 1_999)).toEqual([]);
    const closed = live.advance(BTC, T0 + MINUTE_MS + 2_000);
    expect(closed.map((e) => `${e.interval}${e.final ? '!' : ''}`)).toEqual(['1m!']);
    expect(live.forming(BTC, '1m')).toBeUndefined();
    expect(live.forming(BTC, '1h')).toMatchObject({ time: T0, open: 10 });
    expect(live.forming(ETH, '1m')).toMatchObject({ time: T0, open: 20 });
  });

  it('after a restore from storage, carries on exactly as if it had never stopped', () => {
    const symbolTicks = ticks.filter((t) => t.symbol === BTC);
    const cut = Math.floor(symbolTicks.length * 0.6);
    const before = symbolTicks.slice(0, cut);
    const lastTs = before[before.length - 1]!.ts;
    const openFrom = floorBucket(lastTs, '1m');
    const closedMinutes = (aggregateTicks(before, '1m').get(BTC) ?? []).filter(
      (b) => b.time < openFrom && b.time >= floorBucket(openFrom, '1w'),
    );
    const restored = new LiveCandles();
    const announced = restored.restore(BTC, {
      closedMinutes,
      trades: before.filter((t) => t.ts >= openFrom),
      openFrom,
    });
    expect(new Set(announced.map((e) => e.interval))).toEqual(new Set(INTERVALS));
    expect(announced.every((e) => !e.final)).toBe(true);

    // Redeliver a stretch of already-stored trades (at-least-once), then the rest.
    const events: BarUpdate[] = [...announced];
    for (const tick of symbolTicks.slice(cut - 500)) events.push(...restored.add(tick).events);
    events.push(...restored.advance(BTC, T0 + 30 * DAY_MS));
    const last = latest(events);
    for (const interval of INTERVALS) {
      const oracle = (aggregateTicks(symbolTicks, interval).get(BTC) ?? []).filter(
        (b) => b.time >= floorBucket(openFrom, interval),
      );
      const got = [...last.values()]
        .filter((e) => e.interval === interval)
        .map((e) => e.bar)
        .sort((a, b) => a.time - b.time);
      expectSameBars(oracle, got, `after restore ${interval}`);
    }
  });

  it('restores across a bucket edge: the last open minute starts a new hour', () => {
    const live = new LiveCandles();
    const closedMinutes: Bar[] = [
      { time: T0 + 58 * MINUTE_MS, open: 1, high: 3, low: 1, close: 2, volume: 1 },
      { time: T0 + 59 * MINUTE_MS, open: 2, high: 2, low: 0.5, close: 1.5, volume: 2 },
    ];
    const trade = makeTick({ symbol: BTC, ts: T0 + HOUR_MS + 5, price: 4, size: 3, id: 'x' });
    live.restore(BTC, { closedMinutes, trades: [trade], openFrom: T0 + HOUR_MS });
    expect(live.forming(BTC, '1h')).toEqual({
      time: T0 + HOUR_MS,
      open: 4,
      high: 4,
      low: 4,
      close: 4,
      volume: 3,
    });
    expect(live.forming(BTC, '1d')).toEqual({
      time: T0,
      open: 1,
      high: 4,
      low: 0.5,
      close: 4,
      volume: 6,
    });
  });
});

describe('coalesceUpdates', () => {
  it('keeps finals and the last forming update of each bar, in order', () => {
    const live = new LiveCandles();
    const events: BarUpdate[] = [];
    for (let i = 0; i < 300; i++) {
      events.push(
        ...live.add(makeTick({ symbol: BTC, ts: T0 + i * 1_000, price: 10 + (i % 7), id: `c${i}` }))
          .events,
      );
    }
    const thin = coalesceUpdates(events);
    expect(thin.length).toBeLessThan(events.length / 10);
    // A listener applying the thin run ends where one applying every update ends.
    expect(latest(thin)).toEqual(latest(events));
    expect(thin.filter((e) => e.final)).toEqual(events.filter((e) => e.final));
    // Per series, bar times never go back.
    const lastTime = new Map<string, number>();
    for (const e of thin) {
      expect(e.bar.time).toBeGreaterThanOrEqual(lastTime.get(e.interval) ?? 0);
      lastTime.set(e.interval, e.bar.time);
    }
  });
});

describe('LiveCandles.addAll', () => {
  it('gives, thinned, what add gives trade by trade: the same finals in order and the same last forming bars', () => {
    const random = seededRandom(11);
    // Mostly in order with jitter, some late and some repeated, across bucket edges of every size.
    const stream: Tick[] = [];
    let ts = T0 + 50 * MINUTE_MS;
    for (let i = 0; i < 30_000; i++) {
      ts += Math.floor(random() * 4_000);
      const jitter = random() < 0.1 ? -Math.floor(random() * 90_000) : 0;
      const tick = makeTick({
        symbol: random() < 0.6 ? BTC : ETH,
        ts: ts + jitter,
        price: 100 + Math.floor(random() * 1_000) / 100,
        size: 0.01 + Math.floor(random() * 100) / 1_000,
        id: `t${i}`,
      });
      stream.push(tick);
      if (random() < 0.02) stream.push({ ...tick });
    }
    const one = new LiveCandles({ allowedLatenessMs: 5_000 });
    const all = new LiveCandles({ allowedLatenessMs: 5_000 });
    let finalsSeen = 0;
    for (let at = 0; at < stream.length;) {
      const size = 1 + Math.floor(random() * 700);
      const batch = stream.slice(at, at + size);
      at += size;
      const byOne: BarUpdate[] = [];
      const statuses = batch.map((tick) => {
        const result = one.add(tick);
        byOne.push(...result.events);
        return result.status;
      });
      const byAll = all.addAll(batch);
      expect(byAll.statuses).toEqual(statuses);
      const a = coalesceUpdates(byOne);
      const b = coalesceUpdates(byAll.events);
      expect(b.filter((e) => e.final)).toEqual(a.filter((e) => e.final));
      expect(latest(b.filter((e) => !e.final))).toEqual(latest(a.filter((e) => !e.final)));
      finalsSeen += a.filter((e) => e.final).length;
    }
    // Every interval closed bars along the way, so the comparison covered them.
    expect(finalsSeen).toBeGreaterThan(1_000);
    for (const interval of INTERVALS) {
      expect(all.forming(BTC, interval), interval).toEqual(one.forming(BTC, interval));
    }
  });
});
