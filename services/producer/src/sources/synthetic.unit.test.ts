import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MarketSymbol, Tick } from '@candlestream/core';
import type { TimerHandle } from '@candlestream/core';
import {
  AppError,
  SimulatedClock,
  decodeTick,
  encodeTick,
  parseSymbol,
  systemClock,
} from '@candlestream/core';
import type { SyntheticSourceOptions } from './synthetic.js';
import { createSyntheticSource } from './synthetic.js';

const BTC = parseSymbol('BTC-USD');
const ETH = parseSymbol('ETH-USD');
const SOL = parseSymbol('SOL-USD');
const START_TS = Date.UTC(2024, 0, 1);
const YEAR_MS = 365.25 * 86_400_000;

async function collect(
  options: SyntheticSourceOptions,
  signal = new AbortController().signal,
): Promise<Tick[]> {
  const out: Tick[] = [];
  for await (const tick of createSyntheticSource(options).trades({ signal })) out.push(tick);
  return out;
}

function history(extra: Partial<SyntheticSourceOptions> = {}): Promise<Tick[]> {
  return collect({
    symbols: [BTC, ETH],
    seed: 42,
    tradesPerSecond: 10,
    startTs: START_TS,
    ...extra,
  });
}

function bySymbol(ticks: Tick[]): Map<MarketSymbol, Tick[]> {
  const out = new Map<MarketSymbol, Tick[]>();
  for (const t of ticks) {
    const group = out.get(t.symbol) ?? [];
    group.push(t);
    out.set(t.symbol, group);
  }
  return out;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('synthetic source, history mode', () => {
  it('replays the same trades from the same seed, and different ones from another', async () => {
    const a = await history({ limit: 1_000 });
    const b = await history({ limit: 1_000 });
    const c = await history({ limit: 1_000, seed: 43 });
    expect(a).toHaveLength(1_000);
    expect(b).toEqual(a);
    expect(c.map((t) => t.price)).not.toEqual(a.map((t) => t.price));
    expect(a[0]!.id).toBe(`syn-42-${START_TS.toString(36)}-0`);
  });

  it('generates 100,000 valid trades over hours of event time at the requested rate', async () => {
    const ticks = await collect({
      symbols: [BTC, ETH, SOL],
      seed: 7,
      tradesPerSecond: 10,
      startTs: START_TS,
      limit: 100_000,
    });
    expect(ticks).toHaveLength(100_000);
    // 100,000 trades at 10/s span ~10,000 s; a Poisson sum's spread is ~0.3% of that.
    const spanSeconds = (ticks.at(-1)!.ts - START_TS) / 1000;
    expect(spanSeconds).toBeGreaterThan(9_800);
    expect(spanSeconds).toBeLessThan(10_200);
    const refused = ticks.filter((t) => !decodeTick(encodeTick(t)).ok || t.source !== 'synthetic');
    expect(refused).toEqual([]);
    const groups = bySymbol(ticks);
    expect([...groups.keys()].sort()).toEqual([BTC, ETH, SOL]);
    for (const group of groups.values()) {
      expect(group.length / ticks.length).toBeCloseTo(1 / 3, 1);
      expect(new Set(group.map((t) => t.id)).size).toBe(group.length);
      expect(group.filter((t, i) => i > 0 && t.ts < group[i - 1]!.ts)).toEqual([]);
    }
    // Interleaved, not one symbol after another.
    let switches = 0;
    for (let i = 1; i < 1_000; i++) if (ticks[i]!.symbol !== ticks[i - 1]!.symbol) switches++;
    expect(switches).toBeGreaterThan(500);
  });

  it('moves prices like a 60%-volatility walk, with cent ticks, log-normal sizes and aggressor sides', async () => {
    const ticks = await history({ symbols: [BTC], limit: 50_000 });
    let sumSquares = 0;
    let upBuys = 0;
    let ups = 0;
    for (let i = 1; i < ticks.length; i++) {
      const move = ticks[i]!.price - ticks[i - 1]!.price;
      sumSquares += Math.log(ticks[i]!.price / ticks[i - 1]!.price) ** 2;
      if (move > 0) {
        ups++;
        if (ticks[i]!.side === 'buy') upBuys++;
      }
    }
    const spanYears = (ticks.at(-1)!.ts - START_TS) / YEAR_MS;
    const annualVolatility = Math.sqrt(sumSquares / spanYears);
    expect(annualVolatility).toBeGreaterThan(0.45);
    expect(annualVolatility).toBeLessThan(0.85);
    expect(ticks[0]!.price).toBeGreaterThan(36_000);
    expect(ticks[0]!.price).toBeLessThan(38_000);
    expect(ticks.filter((t) => Math.round(t.price * 100) / 100 !== t.price)).toEqual([]);
    expect(ticks.filter((t) => Number(t.size.toFixed(8)) !== t.size)).toEqual([]);
    expect(upBuys / ups).toBeGreaterThan(0.6);
    const buys = ticks.filter((t) => t.side === 'buy').length / ticks.length;
    expect(buys).toBeGreaterThan(0.45);
    expect(buys).toBeLessThan(0.55);
    const notionals = ticks.map((t) => t.price * t.size).sort((a, b) => a - b);
    const median = notionals[notionals.length >> 1]!;
    expect(median).toBeGreaterThan(350);
    expect(median).toBeLessThan(700);
    expect(notionals.at(-1)! / median).toBeGreaterThan(50); // heavy right tail
  });

  it('keeps prices positive and quoted to four significant digits over a long wild run', async () => {
    const ticks = await history({
      symbols: [parseSymbol('SHIB-USD')],
      initialPrices: { 'shib/usd': 0.00001234 },
      tradesPerSecond: 0.0001, // ~3 hours apart: 200,000 trades span ~60 years
      limit: 200_000,
    });
    expect(ticks[0]!.price).toBeGreaterThan(0.00001);
    expect(ticks[0]!.price).toBeLessThan(0.00002);
    expect(ticks.filter((t) => !(t.price > 0 && t.size > 0))).toEqual([]);
    expect(ticks.filter((t) => Number(t.price.toPrecision(4)) !== t.price)).toEqual([]);
    // The walk really wandered: prices spread over orders of magnitude, all still valid.
    const high = ticks.reduce((m, t) => Math.max(m, t.price), 0);
    const low = ticks.reduce((m, t) => Math.min(m, t.price), Infinity);
    expect(high / low).toBeGreaterThan(20);
    expect(ticks).toHaveLength(200_000);
    expect(ticks.filter((t) => !decodeTick(encodeTick(t)).ok)).toEqual([]);
  });

  it('starts known symbols near their market price and others at a stable 1-500', async () => {
    const other = parseSymbol('ABC-USD');
    const first = bySymbol(await history({ symbols: [BTC, ETH, other], limit: 300 }));
    expect(first.get(ETH)![0]!.price).toBeGreaterThan(1_900);
    expect(first.get(ETH)![0]!.price).toBeLessThan(2_100);
    const otherPrice = first.get(other)![0]!.price;
    expect(otherPrice).toBeGreaterThanOrEqual(1);
    expect(otherPrice).toBeLessThanOrEqual(510);
    const again = bySymbol(await history({ symbols: [other], seed: 1, limit: 1 }));
    expect(Math.abs(again.get(other)![0]!.price / otherPrice - 1)).toBeLessThan(0.01);
  });

  it('ends after limit trades, and at once when the signal aborts', async () => {
    expect(await history({ limit: 0 })).toEqual([]);
    expect(await history({ limit: 123 })).toHaveLength(123);
    const controller = new AbortController();
    const seen: Tick[] = [];
    const source = createSyntheticSource({
      symbols: [BTC],
      seed: 1,
      tradesPerSecond: 5,
      startTs: START_TS,
    });
    for await (const tick of source.trades({ signal: controller.signal })) {
      seen.push(tick);
      if (seen.length === 10) controller.abort();
    }
    expect(seen).toHaveLength(10);
  });

  it('refuses options it cannot honour', () => {
    const base = { symbols: [BTC], seed: 1, tradesPerSecond: 1 };
    const bad: SyntheticSourceOptions[] = [
      { ...base, symbols: [] },
      { ...base, tradesPerSecond: 0 },
      { ...base, startTs: 1_700_000_000 }, // seconds, not ms
      { ...base, limit: -1 },
      { ...base, initialPrices: { 'BTC-USD': -5 } },
      { ...base, initialPrices: { shibusd: 1 } }, // reads as SHI-BUSD, not among the symbols
    ];
    for (const options of bad) {
      expect(() => createSyntheticSource(options)).toThrow(AppError);
    }
  });
});

describe('synthetic source, history without a limit', () => {
  it('regression: replays up to now, then goes on live from the same walk, never ahead of the clock', async () => {
    const now = START_TS + 3_600_000;
    const clock = new SimulatedClock(now);
    const controller = new AbortController();
    const source = createSyntheticSource({
      symbols: [BTC],
      seed: 9,
      tradesPerSecond: 2,
      startTs: START_TS,
      clock,
    });
    const seen: Tick[] = [];
    const emittedAt: number[] = [];
    const done = (async () => {
      for await (const tick of source.trades({ signal: controller.signal })) {
        seen.push(tick);
        emittedAt.push(clock.now());
      }
    })();
    await clock.advanceAsync(0);
    // The hour of history at once (2/s: about 7,200 trades), none after now.
    expect(seen.length).toBeGreaterThan(6_500);
    expect(seen.length).toBeLessThan(7_900);
    expect(seen.at(-1)!.ts).toBeLessThanOrEqual(now);
    const caughtUp = seen.length;
    await clock.advanceAsync(60_000);
    // Then live at the rate: a minute brings about 120 more, each stamped no later than it went out.
    expect(seen.length - caughtUp).toBeGreaterThan(80);
    expect(seen.length - caughtUp).toBeLessThan(160);
    expect(seen.filter((t, i) => t.ts > emittedAt[i]!)).toEqual([]);
    expect(seen.at(-1)!.ts).toBeGreaterThan(now + 50_000);
    expect(seen.filter((t, i) => i > 0 && t.ts < seen[i - 1]!.ts)).toEqual([]);
    // One walk: the live part is the history's continuation, with the same ids' sequence.
    const same = await collect({
      symbols: [BTC],
      seed: 9,
      tradesPerSecond: 2,
      startTs: START_TS,
      limit: seen.length,
    });
    expect(same.map((t) => [t.id, t.price, t.size])).toEqual(
      seen.map((t) => [t.id, t.price, t.size]),
    );
    controller.abort();
    await done;
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('synthetic source, live mode', () => {
  it('paces emission to the rate from the schedule and stops with no timer left', async () => {
    const clock = new SimulatedClock(START_TS);
    const controller = new AbortController();
    const source = createSyntheticSource({
      symbols: [BTC, ETH],
      seed: 3,
      tradesPerSecond: 20,
      clock,
    });
    const seen: Tick[] = [];
    const done = (async () => {
      for await (const tick of source.trades({ signal: controller.signal })) seen.push(tick);
    })();
    await clock.advanceAsync(5_000);
    // 20/s for 5 s: 100 expected, Poisson spread ~10.
    expect(seen.length).toBeGreaterThan(70);
    expect(seen.length).toBeLessThan(130);
    expect(seen[0]!.ts).toBeGreaterThanOrEqual(START_TS);
    expect(seen.at(-1)!.ts).toBeLessThanOrEqual(START_TS + 5_000);
    expect(seen.filter((t, i) => i > 0 && t.ts < seen[i - 1]!.ts)).toEqual([]);
    expect(seen[0]!.id).toBe(`syn-3-${START_TS.toString(36)}-0`);
    // Small bursts: most trades get their own wake-up, not one batch per second.
    expect(new Set(seen.map((t) => t.ts)).size).toBeGreaterThan(seen.length / 2);
    const before = seen.length;
    await clock.advanceAsync(5_000);
    expect(seen.length - before).toBeGreaterThan(70); // no drift: the second 5 s gets its share
    // Ends without the clock moving: the pending sleep is cancelled, not waited out.
    controller.abort();
    await done;
    expect(clock.pendingTimers).toBe(0);
  });

  it('gives a restarted run new ids but the same trades otherwise', async () => {
    const clock = new SimulatedClock(START_TS);
    const run = async (): Promise<Tick[]> => {
      const options = { symbols: [BTC, ETH], seed: 5, tradesPerSecond: 10, limit: 20, clock };
      const done = collect(options);
      await clock.advanceAsync(10_000);
      return done;
    };
    const first = await run();
    const second = await run(); // starts 10 s later
    expect(first).toHaveLength(20);
    expect(second).toHaveLength(20);
    expect(second[0]!.id).toBe(`syn-5-${(START_TS + 10_000).toString(36)}-0`);
    const firstIds = new Set(first.map((t) => t.id));
    expect(second.filter((t) => firstIds.has(t.id))).toEqual([]);
    const shape = (t: Tick): unknown => [t.symbol, t.price, t.size, t.side];
    expect(second.map(shape)).toEqual(first.map(shape));
  });

  it('regression: a restarted live run continues each walk from its resumed price, not the seed price', async () => {
    const clock = new SimulatedClock(START_TS);
    const source = createSyntheticSource({
      symbols: [BTC, ETH, SOL],
      seed: 6,
      tradesPerSecond: 30,
      limit: 60,
      clock,
    });
    expect(source.resumesPrices).toBe(true);
    const resumePrices = new Map([
      [BTC, 50_000],
      [ETH, 3_100.5],
      [parseSymbol('DOGE-USD'), 0.1], // on the topic, not configured: ignored
    ]);
    const out: Tick[] = [];
    const done = (async () => {
      const signal = new AbortController().signal;
      for await (const t of source.trades({ signal, resumePrices })) out.push(t);
    })();
    await clock.advanceAsync(10_000);
    await done;
    const first = new Map([...bySymbol(out)].map(([symbol, ticks]) => [symbol, ticks[0]!.price]));
    expect(first.get(BTC)! / 50_000).toBeCloseTo(1, 2);
    expect(first.get(ETH)! / 3_100.5).toBeCloseTo(1, 2);
    // Without a resumed price a symbol starts from its default (SOL: hashed, stable).
    const fresh = await history({ symbols: [SOL], limit: 1 });
    expect(first.get(SOL)! / fresh[0]!.price).toBeCloseTo(1, 1);
  });

  it('ignores resumed prices in history mode, which replays the seed walk the same every run', async () => {
    const options = { symbols: [BTC], seed: 7, tradesPerSecond: 10, startTs: START_TS, limit: 5 };
    const source = createSyntheticSource(options);
    expect(source.resumesPrices).toBe(false);
    const resumed: Tick[] = [];
    const signal = new AbortController().signal;
    for await (const t of source.trades({ signal, resumePrices: new Map([[BTC, 50_000]]) })) {
      resumed.push(t);
    }
    expect(resumed).toEqual(await collect(options));
  });

  it('takes trade times and due times from the injected clock', async () => {
    // The wall clock (2026 or later) is nowhere near the trades.
    const clock = new SimulatedClock(START_TS);
    const controller = new AbortController();
    const source = createSyntheticSource({ symbols: [BTC], seed: 4, tradesPerSecond: 20, clock });
    const seen: Tick[] = [];
    const done = (async () => {
      for await (const tick of source.trades({ signal: controller.signal })) seen.push(tick);
    })();
    await clock.advanceAsync(0);
    expect(seen).toEqual([]); // the loop ran, but the clock did not move
    // A jump fires the pending wait; the loop resumes after it, at the new time.
    clock.advance(2_000);
    await clock.advanceAsync(0);
    expect(seen.length).toBeGreaterThan(25);
    expect(seen.length).toBeLessThan(55);
    expect(new Set(seen.map((t) => t.ts))).toEqual(new Set([START_TS + 2_000]));
    // A minute's stall (suspended laptop) resumes the schedule from now instead of a flood.
    const beforeStall = seen.length;
    clock.advance(60_000);
    await clock.advanceAsync(0);
    expect(seen.slice(beforeStall).map((t) => t.ts)).toEqual([START_TS + 62_000]);
    controller.abort();
    await done;
  });

  // Pacing itself is tested above on a simulated clock; this checks only that the default clock
  // is the system one (a real-time run would sleep, and time out on a loaded machine).
  it('reads the time and waits on systemClock when given no clock', async () => {
    const startMs = Date.now(); // decodeTick refuses trades far from the present
    let nowMs = startMs;
    vi.spyOn(systemClock, 'now').mockImplementation(() => nowMs);
    const waits: number[] = [];
    vi.spyOn(systemClock, 'setTimeout').mockImplementation((fn, ms) => {
      waits.push(ms);
      nowMs += Math.ceil(ms); // the wait is over at once, and the mocked time moved by it
      queueMicrotask(fn);
      return {} as TimerHandle;
    });
    const ticks = await collect({ symbols: [BTC, ETH], seed: 9, tradesPerSecond: 100, limit: 50 });
    expect(ticks).toHaveLength(50);
    expect(ticks[0]!.id).toBe(`syn-9-${startMs.toString(36)}-0`);
    expect(ticks[0]!.ts).toBeGreaterThanOrEqual(startMs);
    expect(ticks.at(-1)!.ts).toBeLessThanOrEqual(nowMs);
    expect(ticks.map((t) => decodeTick(encodeTick(t))).filter((d) => !d.ok)).toEqual([]);
    expect(waits.length).toBeGreaterThan(0);
  });
});
