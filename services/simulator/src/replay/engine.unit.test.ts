import type { EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import { SimulatedClock } from '@candlestream/core';
import { makeTick } from '@candlestream/core/testing';
import { describe, expect, it } from 'vitest';
import { ReplayEngine } from './engine.js';
import type { HistorySource, ReplayRange, ReplaySink, ReplaySpeed } from './types.js';

const BTC = 'BTC-USD' as MarketSymbol;
const T0 = Date.UTC(2026, 10, 20);
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;

/** A trade every `gapMs` over [from, to). */
function trades(from: EpochMs, to: EpochMs, gapMs: number): Tick[] {
  const out: Tick[] = [];
  for (let ts = from, i = 0; ts < to; ts += gapMs, i++) {
    out.push(makeTick({ symbol: BTC, ts, price: 100 + (i % 7), size: 1, id: `t${String(i)}` }));
  }
  return out;
}

/** The trades in pages of `pageSize`, from a time on (a fake of one module's seam). */
function memorySource(all: readonly Tick[], pageSize = 50): HistorySource & { opened: EpochMs[] } {
  const opened: EpochMs[] = [];
  return {
    kind: 'memory',
    opened,
    async *pages(range: ReplayRange, from: EpochMs) {
      opened.push(from);
      const wanted = all.filter((t) => t.ts >= from && t.ts < range.to);
      for (let i = 0; i < wanted.length; i += pageSize) {
        await Promise.resolve();
        yield wanted.slice(i, i + pageSize);
      }
    },
  };
}

interface Sent {
  at: EpochMs;
  trades: readonly Tick[];
}

function recordingSink(clock: SimulatedClock): ReplaySink & { sent: Sent[]; all(): Tick[] } {
  const sent: Sent[] = [];
  return {
    sent,
    all: () => sent.flatMap((s) => s.trades),
    send(batch) {
      sent.push({ at: clock.now(), trades: batch });
      return Promise.resolve();
    },
  };
}

function setup(all: Tick[], range: ReplayRange, speed: ReplaySpeed, paused = false) {
  const clock = new SimulatedClock(Date.UTC(2030, 0, 1));
  const sink = recordingSink(clock);
  const source = memorySource(all);
  const engine = new ReplayEngine({ source, sink, range, clock, speed, paused, maxBatch: 100 });
  const running = engine.run();
  return { clock, sink, source, engine, running };
}

/** Lets the engine's awaited work run without moving the clock. */
async function settle(clock: SimulatedClock): Promise<void> {
  for (let i = 0; i < 20; i++) await clock.advanceAsync(0);
}

describe('ReplayEngine', () => {
  it('at speed max publishes every trade in order, in batches of at most maxBatch, and completes', async () => {
    const all = trades(T0, T0 + 10 * MINUTE, 250);
    const { sink, running, clock } = setup(
      all,
      { symbols: [BTC], from: T0, to: T0 + 10 * MINUTE },
      'max',
    );
    await settle(clock);
    const summary = await running;
    expect(sink.all()).toEqual(all);
    expect(Math.max(...sink.sent.map((s) => s.trades.length))).toBeLessThanOrEqual(100);
    expect(summary).toMatchObject({ messages: all.length, completed: true });
  });

  it('at speed 60 publishes each trade when its time comes, against the absolute clock', async () => {
    const range = { symbols: [BTC], from: T0, to: T0 + 10 * MINUTE };
    const all = trades(T0, range.to, 100); // 10 trades a simulated second
    const { sink, clock, running, engine } = setup(all, range, 60);
    await settle(clock);
    // 5 wall seconds = 300 simulated seconds.
    await clock.advanceAsync(5 * SECOND);
    await settle(clock);
    const published = sink.all();
    expect(published.length).toBeGreaterThanOrEqual(2_990);
    expect(published.length).toBeLessThanOrEqual(3_001);
    expect(published).toEqual(all.slice(0, published.length));
    // Nothing went out before its due time: wall = start + (ts - T0) / 60.
    const start = Date.UTC(2030, 0, 1);
    for (const s of sink.sent) {
      for (const t of s.trades) expect(s.at).toBeGreaterThanOrEqual(start + (t.ts - T0) / 60);
    }
    expect(engine.status()).toMatchObject({ state: 'playing', speed: 60 });
    expect(engine.status().percent).toBeCloseTo(50, 0);
    await clock.advanceAsync(6 * SECOND);
    await settle(clock);
    const summary = await running;
    expect(sink.all()).toEqual(all);
    expect(summary.completed).toBe(true);
    expect(summary.effectiveSpeed).toBeGreaterThan(59);
    expect(summary.effectiveSpeed).toBeLessThan(61);
  });

  it('paused publishes nothing however long it waits; resumed, it goes on with the next trade', async () => {
    const range = { symbols: [BTC], from: T0, to: T0 + 10 * MINUTE };
    const all = trades(T0, range.to, SECOND);
    const { sink, clock, engine } = setup(all, range, 60);
    await clock.advanceAsync(SECOND); // 60 simulated seconds
    await settle(clock);
    engine.pause();
    const before = sink.all().length;
    expect(before).toBeGreaterThan(55);
    await clock.advanceAsync(30 * SECOND);
    await settle(clock);
    expect(sink.all().length).toBe(before);
    expect(engine.status().state).toBe('paused');
    engine.resume();
    await clock.advanceAsync(SECOND);
    await settle(clock);
    expect(sink.all().length).toBeGreaterThan(before);
    expect(sink.all()[before]).toEqual(all[before]);
    engine.stop();
  });

  it('seek makes the next trade the first at or after the target, forwards and back', async () => {
    const range = { symbols: [BTC], from: T0, to: T0 + 10 * MINUTE };
    const all = trades(T0, range.to, SECOND);
    const { sink, clock, engine, source } = setup(all, range, 1, true);
    await settle(clock);
    engine.seek(T0 + 5 * MINUTE + 500);
    engine.resume();
    await clock.advanceAsync(2 * SECOND);
    await settle(clock);
    expect(sink.all()[0]!.ts).toBe(T0 + 5 * MINUTE + SECOND);
    engine.seek(T0 + MINUTE);
    await clock.advanceAsync(SECOND / 2);
    await settle(clock);
    const afterBack = sink.all().filter((t) => t.ts < T0 + 5 * MINUTE);
    expect(afterBack[0]!.ts).toBe(T0 + MINUTE);
    expect(source.opened).toEqual([T0, T0 + 5 * MINUTE + 500, T0 + MINUTE]);
    engine.stop();
  });

  it('step publishes exactly the rest of the current bar, then stays paused at its end', async () => {
    const range = { symbols: [BTC], from: T0, to: T0 + 10 * MINUTE };
    const all = trades(T0, range.to, 7 * SECOND);
    const { sink, clock, engine } = setup(all, range, 1, true);
    await settle(clock);
    engine.step('1m');
    await settle(clock);
    expect(sink.all()).toEqual(all.filter((t) => t.ts < T0 + MINUTE));
    expect(engine.status()).toMatchObject({ state: 'paused', simTime: T0 + MINUTE });
    engine.step('1m');
    await settle(clock);
    expect(sink.all()).toEqual(all.filter((t) => t.ts < T0 + 2 * MINUTE));
    // Waiting after a step publishes nothing more.
    await clock.advanceAsync(60 * SECOND);
    await settle(clock);
    expect(sink.all()).toEqual(all.filter((t) => t.ts < T0 + 2 * MINUTE));
    // Playing, a step pauses first and finishes the bar it is in.
    engine.resume();
    await clock.advanceAsync(10 * SECOND);
    await settle(clock);
    engine.step('5m');
    await settle(clock);
    expect(sink.all()).toEqual(all.filter((t) => t.ts < T0 + 5 * MINUTE));
    engine.stop();
  });

  it('a step of a week ends on the Monday the bar closes on, as the candles do', async () => {
    // Weeks open on Mondays 00:00 UTC, not on the epoch's Thursday.
    const monday = Date.UTC(2026, 10, 23);
    const range = { symbols: [BTC], from: monday - 2 * DAY, to: monday + 2 * DAY };
    const all = trades(range.from, range.to, 3 * 60 * MINUTE);
    const { sink, clock, engine } = setup(all, range, 1, true);
    await settle(clock);
    engine.step('1w');
    await settle(clock);
    expect(sink.all()).toEqual(all.filter((t) => t.ts < monday));
    expect(engine.status()).toMatchObject({ state: 'paused', simTime: monday });
    engine.stop();
  });

  it('a speed change continues from where the replay stands, without a jump', async () => {
    const range = { symbols: [BTC], from: T0, to: T0 + 60 * MINUTE };
    const all = trades(T0, range.to, SECOND);
    const { sink, clock, engine } = setup(all, range, 1);
    await clock.advanceAsync(10 * SECOND);
    await settle(clock);
    const atOne = sink.all().length;
    expect(atOne).toBeGreaterThanOrEqual(10);
    expect(atOne).toBeLessThanOrEqual(11);
    engine.setSpeed(100);
    await clock.advanceAsync(SECOND);
    await settle(clock);
    // 1 wall second at 100x: about 100 more, continuing from the same place.
    expect(sink.all().length - atOne).toBeGreaterThanOrEqual(99);
    expect(sink.all().length - atOne).toBeLessThanOrEqual(101);
    expect(sink.all()).toEqual(all.slice(0, sink.all().length));
    engine.stop();
  });

  it('refuses an empty range', () => {
    const clock = new SimulatedClock(0);
    expect(
      () =>
        new ReplayEngine({
          source: memorySource([]),
          sink: recordingSink(clock),
          range: { symbols: [BTC], from: T0, to: T0 },
          clock,
          speed: 1,
        }),
    ).toThrow(/from must be before to/);
  });
});
