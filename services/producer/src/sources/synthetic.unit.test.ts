import { afterEach, describe, expect, it, vi } from 'vitest';
import type { MarketSymbol, Tick } from '@candlestream/core';
import type { TimerHandle } from '@candlestream/core';
import {
  AppError,
  MINUTE_MS,
  SimulatedClock,
  aggregateTicks,
  decodeTick,
  encodeTick,
  parseSymbol,
  systemClock,
} from '@candlestream/core';
import type { SyntheticSourceOptions } from './synthetic.js';
import { createSyntheticModel, createSyntheticSource, MAX_CATCH_UP_MS } from './synthetic.js';
import { hashedInitialPrice } from './synthetic-model.js';

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

/** What a content-only comparison looks at (everything a row stores). */
const row = (t: Tick): unknown[] => [t.symbol, t.ts, t.id, t.price, t.size, t.side];

describe('synthetic source, history mode', () => {
  it('replays the same trades from the same seed, and different ones from another', async () => {
    const a = await history({ limit: 1_000 });
    const b = await history({ limit: 1_000 });
    const c = await history({ limit: 1_000, seed: 43 });
    expect(a).toHaveLength(1_000);
    expect(b).toEqual(a);
    expect(c.map((t) => t.price)).not.toEqual(a.map((t) => t.price));
    expect(a[0]!.id).toBe(`syn-42-${a[0]!.symbol}-${a[0]!.ts}-0`);
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
    expect(ticks.filter((t, i) => i > 0 && t.ts < ticks[i - 1]!.ts)).toEqual([]);
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

  it('keeps prices positive and quoted to four significant digits over a long sparse run', async () => {
    const ticks = await history({
      symbols: [parseSymbol('SHIB-USD')],
      initialPrices: { 'shib/usd': 0.00001234 },
      tradesPerSecond: 0.0001, // ~3 hours apart: 200,000 trades span ~60 years
      limit: 200_000,
    });
    expect(ticks).toHaveLength(200_000);
    expect(ticks.filter((t) => !(t.price > 0 && t.size > 0))).toEqual([]);
    expect(ticks.filter((t) => Number(t.price.toPrecision(4)) !== t.price)).toEqual([]);
    // The path wanders but reverts: decades stay within a plausible band around the centre.
    const high = ticks.reduce((m, t) => Math.max(m, t.price), 0);
    const low = ticks.reduce((m, t) => Math.min(m, t.price), Infinity);
    expect(high / low).toBeGreaterThan(2);
    expect(high).toBeLessThan(0.00001234 * 8);
    expect(low).toBeGreaterThan(0.00001234 / 8);
    expect(ticks.filter((t) => !decodeTick(encodeTick(t)).ok)).toEqual([]);
  });

  it('keeps known symbols around their market price and others around a stable 1-500, over decades', () => {
    const other = parseSymbol('ABC-USD');
    const centre = hashedInitialPrice(other);
    expect(centre).toBeGreaterThanOrEqual(1);
    expect(centre).toBeLessThanOrEqual(500);
    for (const seed of [1, 2]) {
      const model = createSyntheticModel({ symbols: [BTC, ETH, other], seed, tradesPerSecond: 5 });
      for (const [symbol, expected] of [
        [BTC, 37_000],
        [ETH, 2_000],
        [other, centre],
      ] as const) {
        const prices: number[] = [];
        for (let y = 2010; y < 2100; y++) {
          for (let m = 0; m < 12; m++) prices.push(model.price(symbol, Date.UTC(y, m, 1)));
        }
        prices.sort((a, b) => a - b);
        const median = prices[prices.length >> 1]!;
        expect(median / expected, `${symbol} seed ${seed}`).toBeGreaterThan(0.6);
        expect(median / expected, `${symbol} seed ${seed}`).toBeLessThan(1.6);
        expect(prices[0]! / expected).toBeGreaterThan(0.2);
        expect(prices.at(-1)! / expected).toBeLessThan(5);
      }
    }
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
      { ...base, seed: 1.5 },
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

describe('synthetic trades as a function of (seed, symbol, time)', () => {
  const model = createSyntheticModel({ symbols: [BTC, ETH, SOL], seed: 12, tradesPerSecond: 30 });
  const from = START_TS + 12_345;
  const to = from + 20 * MINUTE_MS;

  it('gives the same trades for a range whatever the generation started from', async () => {
    const options = { symbols: [BTC, ETH, SOL], seed: 12, tradesPerSecond: 30 };
    const early = await collect({ ...options, startTs: START_TS, limit: 45_000 });
    const late = await collect({ ...options, startTs: from, limit: 40_000 });
    const window = (ticks: Tick[]): Tick[] => ticks.filter((t) => t.ts >= from && t.ts < to);
    expect(window(late).length).toBeGreaterThan(30 * 20 * 60 * 0.9);
    expect(window(late)).toEqual(window(early));
    // And each symbol's share is what the model gives for that symbol alone.
    for (const symbol of [BTC, ETH, SOL]) {
      expect(window(late).filter((t) => t.symbol === symbol)).toEqual([
        ...model.trades(symbol, from, to),
      ]);
    }
  });

  it('joins adjacent ranges exactly, at any cut', () => {
    const whole = [...model.trades(BTC, from, to)];
    for (const cut of [from + 1, from + 999, from + 61_017, to - 1]) {
      const joined = [...model.trades(BTC, from, cut), ...model.trades(BTC, cut, to)];
      expect(joined.map(row)).toEqual(whole.map(row));
    }
    // The path itself is continuous across the cut: no jump between neighbouring trades.
    const steps = whole.slice(1).map((t, i) => Math.abs(Math.log(t.price / whole[i]!.price)));
    expect(Math.max(...steps)).toBeLessThan(0.01);
  });

  it("gives 1-minute candles that are exactly the aggregate of the minute's trades", () => {
    const alignedFrom = START_TS + 7 * MINUTE_MS;
    const alignedTo = alignedFrom + 90 * MINUTE_MS;
    for (const symbol of [BTC, SOL]) {
      const candles = [...model.candles(symbol, alignedFrom, alignedTo)];
      const expected = aggregateTicks(model.trades(symbol, alignedFrom, alignedTo), '1m').get(
        symbol,
      );
      expect(candles).toHaveLength(90);
      expect(candles).toEqual(expected);
    }
    // A sparse market has minutes without trades: no candle for them, not an empty one.
    const sparse = createSyntheticModel({ symbols: [BTC], seed: 3, tradesPerSecond: 0.01 });
    const bars = [...sparse.candles(BTC, alignedFrom, alignedTo)];
    expect(bars.length).toBeGreaterThan(20);
    expect(bars.length).toBeLessThan(70);
    expect(bars).toEqual(
      aggregateTicks(sparse.trades(BTC, alignedFrom, alignedTo), '1m').get(BTC) ?? [],
    );
    expect(() => [...model.candles(BTC, alignedFrom + 1, alignedTo)]).toThrow(AppError);
  });
});

describe('synthetic source, history without a limit', () => {
  it('regression: replays up to now, then goes on live with the same trades, never ahead of the clock', async () => {
    const now = START_TS + 3_600_000;
    const clock = new SimulatedClock(now);
    const controller = new AbortController();
    const options = { symbols: [BTC], seed: 9, tradesPerSecond: 2 };
    const source = createSyntheticSource({ ...options, startTs: START_TS, clock });
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
    // Then live at the rate: a minute brings about 120 more, each emitted once its time came.
    expect(seen.length - caughtUp).toBeGreaterThan(80);
    expect(seen.length - caughtUp).toBeLessThan(160);
    expect(seen.filter((t, i) => t.ts > emittedAt[i]!)).toEqual([]);
    expect(seen.at(-1)!.ts).toBeGreaterThan(now + 50_000);
    expect(seen.filter((t, i) => i > 0 && t.ts < seen[i - 1]!.ts)).toEqual([]);
    // One path: history and live together are the model's trades of the whole range.
    const model = createSyntheticModel(options);
    expect(seen).toEqual([...model.trades(BTC, START_TS, seen.at(-1)!.ts + 1)]);
    controller.abort();
    await done;
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('synthetic source, live mode', () => {
  async function liveRun(
    clock: SimulatedClock,
    options: Omit<SyntheticSourceOptions, 'clock'>,
    forMs: number,
    resumeFrom?: Map<MarketSymbol, number>,
  ): Promise<{ seen: Tick[]; emittedAt: number[] }> {
    const controller = new AbortController();
    const source = createSyntheticSource({ ...options, clock });
    const seen: Tick[] = [];
    const emittedAt: number[] = [];
    const done = (async () => {
      const run = { signal: controller.signal, ...(resumeFrom ? { resumeFrom } : {}) };
      for await (const tick of source.trades(run)) {
        seen.push(tick);
        emittedAt.push(clock.now());
      }
    })();
    await clock.advanceAsync(forMs);
    controller.abort();
    await done;
    return { seen, emittedAt };
  }

  it('emits each trade when the clock reaches its time, at the rate, and stops with no timer left', async () => {
    const clock = new SimulatedClock(START_TS);
    const { seen, emittedAt } = await liveRun(
      clock,
      { symbols: [BTC, ETH], seed: 3, tradesPerSecond: 20 },
      10_000,
    );
    // 20/s for 10 s: 200 expected, Poisson spread ~14.
    expect(seen.length).toBeGreaterThan(150);
    expect(seen.length).toBeLessThan(250);
    expect(seen[0]!.ts).toBeGreaterThanOrEqual(START_TS);
    expect(seen.filter((t, i) => t.ts > emittedAt[i]!)).toEqual([]);
    // Emitted soon after their time (wake-ups are at most 100 ms apart).
    expect(seen.filter((t, i) => emittedAt[i]! - t.ts > 100)).toEqual([]);
    expect(seen.filter((t, i) => i > 0 && t.ts < seen[i - 1]!.ts)).toEqual([]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('gives runs started at different times the same trades where they overlap', async () => {
    const options = { symbols: [BTC, ETH], seed: 5, tradesPerSecond: 10 };
    const first = (await liveRun(new SimulatedClock(START_TS), options, 20_000)).seen;
    // Another run (another process) that starts 5 s after the first did.
    const second = (await liveRun(new SimulatedClock(START_TS + 5_000), options, 20_000)).seen;
    const overlap = (ticks: Tick[]): Tick[] =>
      ticks.filter((t) => t.ts >= START_TS + 5_000 && t.ts <= START_TS + 20_000);
    expect(overlap(second).length).toBeGreaterThan(100);
    expect(overlap(second)).toEqual(overlap(first));
    const model = createSyntheticModel(options);
    const end = START_TS + 19_900; // the run's last wake-up may be before its 20 s were up
    const expected = [...model.trades(BTC, START_TS, end), ...model.trades(ETH, START_TS, end)];
    expect(first.filter((t) => t.ts < end)).toEqual(
      expected.sort(
        (a, b) => a.ts - b.ts || (a.symbol === b.symbol ? 0 : a.symbol === BTC ? -1 : 1),
      ),
    );
  });

  it('a run restarted within the process goes on from the newest trade it handed on', async () => {
    const options = { symbols: [BTC, ETH], seed: 6, tradesPerSecond: 10 };
    const clock = new SimulatedClock(START_TS);
    const first = (await liveRun(clock, options, 10_000)).seen;
    const newest = new Map([...bySymbol(first)].map(([s, ticks]) => [s, ticks.at(-1)!.ts]));
    clock.advance(3_000); // the backoff before the restart
    const second = (await liveRun(clock, options, 5_000, newest)).seen;
    // Nothing lost in the 3 s between: the restart emits them, its newest trades again first.
    const byId = new Map([...first, ...second].map((t) => [t.id, t]));
    const all = [...byId.values()].sort((a, b) => a.ts - b.ts);
    expect(all.map(row)).toEqual(
      first
        .concat(second.filter((t) => !first.some((f) => f.id === t.id)))
        .sort((a, b) => a.ts - b.ts)
        .map(row),
    );
    const model = createSyntheticModel(options);
    const end = START_TS + 18_001;
    expect(all.filter((t) => t.symbol === BTC)).toEqual([...model.trades(BTC, START_TS, end)]);
    expect(all.filter((t) => t.symbol === ETH)).toEqual([...model.trades(ETH, START_TS, end)]);
  });

  it('after a long stall emits the last minute of missed trades, each at its own time, not a flood', async () => {
    const clock = new SimulatedClock(START_TS);
    const options = { symbols: [BTC], seed: 4, tradesPerSecond: 20 };
    const controller = new AbortController();
    const source = createSyntheticSource({ ...options, clock });
    const seen: Tick[] = [];
    const done = (async () => {
      for await (const tick of source.trades({ signal: controller.signal })) seen.push(tick);
    })();
    await clock.advanceAsync(0);
    expect(seen).toEqual([]); // the loop ran, but the clock did not move
    // Ten minutes' stall (a suspended laptop): a jump, then the loop wakes at the new time.
    clock.advance(10 * MINUTE_MS);
    await clock.advanceAsync(0);
    const resumedAt = START_TS + 10 * MINUTE_MS;
    const model = createSyntheticModel(options);
    expect(seen).toEqual([...model.trades(BTC, resumedAt - MAX_CATCH_UP_MS, resumedAt + 1)]);
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
    expect(ticks[0]!.ts).toBeGreaterThanOrEqual(startMs);
    expect(ticks.at(-1)!.ts).toBeLessThanOrEqual(nowMs);
    expect(ticks.map((t) => decodeTick(encodeTick(t))).filter((d) => !d.ok)).toEqual([]);
    expect(waits.length).toBeGreaterThan(0);
  });
});
