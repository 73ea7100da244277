/**
 * What determinism costs the synthetic generator: the hash-defined model (trades of any time a
 * pure function of seed, symbol and time) beside the sequential seeded walk it replaced, which
 * the pipeline bench used to feed on. Figures: trades generated per second on one core
 * (ops/s × TRADES_PER_OP), printed after the run.
 */
import type { MarketSymbol, Tick, TradeSide } from '@candlestream/core';
import { DAY_MS, SECOND_MS, parseSymbol, seededRandom } from '@candlestream/core';
import { afterAll, bench, describe } from 'vitest';
import { createSyntheticModel } from './synthetic-model.js';
import { createSyntheticSource } from './synthetic.js';

const TRADES_PER_OP = 200_000;
const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD'].map(parseSymbol);
const RATE_PER_S = 50;
const START_MS = Date.UTC(2026, 0, 5);
const figures = new Map<string, number>();

/** The replaced generator's core (services/producer before issue 15): one sequential walk. */
function oldWalk(seed: number, symbols: readonly MarketSymbol[], tradesPerSecond: number) {
  const YEAR_MS = 365.25 * DAY_MS;
  const random = seededRandom(seed);
  const normal = (): number =>
    Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const states = symbols.map((symbol) => ({ symbol, price: 37_000, last: 0 }));
  const meanGapMs = SECOND_MS / tradesPerSecond;
  let offsetMs = 0;
  let n = 0;
  return (): Tick => {
    offsetMs += -Math.log(1 - random()) * meanGapMs;
    const state = states[Math.floor(random() * states.length)]!;
    const variance = (0.36 * (offsetMs - state.last)) / YEAR_MS;
    state.last = offsetMs;
    let logReturn = normal() * Math.sqrt(variance) - variance / 2;
    if (random() < 1e-4) logReturn += normal() * 0.003;
    const before = Number(state.price.toFixed(2));
    state.price *= Math.exp(logReturn);
    const price = Number(state.price.toFixed(2));
    const size = Number(((500 / price) * Math.exp(normal() * 1.4)).toFixed(8));
    const up = price === before ? random() < 0.5 : price > before;
    const side: TradeSide = up === random() < 0.7 ? 'buy' : 'sell';
    const ts = START_MS + Math.floor(offsetMs);
    const id = `syn-${seed}-${START_MS.toString(36)}-${n++}`;
    return { v: 1, symbol: state.symbol, ts, price, size, side, id, source: 'synthetic' };
  };
}

function record(name: string, durationMs: number): void {
  const perSecond = Math.round(TRADES_PER_OP / (durationMs / 1_000));
  figures.set(name, Math.max(figures.get(name) ?? 0, perSecond));
}

afterAll(() => {
  process.stdout.write('\nsynthetic generation, trades/s on one core (best op):\n');
  for (const [name, perSecond] of figures) {
    process.stdout.write(`  ${name.padEnd(58)} ${perSecond.toLocaleString('en-US')}\n`);
  }
});

describe(`synthetic trades, ${TRADES_PER_OP.toLocaleString('en-US')} per op, ${SYMBOLS.length} symbols`, () => {
  let seed = 0;
  bench('old sequential walk (baseline)', () => {
    const started = performance.now();
    const next = oldWalk(++seed, SYMBOLS, RATE_PER_S);
    for (let i = 0; i < TRADES_PER_OP; i++) next();
    record('old sequential walk (baseline)', performance.now() - started);
  });

  bench('deterministic model, merged stream', () => {
    const started = performance.now();
    const stream = createSyntheticModel({
      symbols: SYMBOLS,
      seed: ++seed,
      tradesPerSecond: RATE_PER_S,
    }).stream(START_MS);
    for (let i = 0; i < TRADES_PER_OP; i++) stream.next();
    record('deterministic model, merged stream', performance.now() - started);
  });

  bench('deterministic source, history mode (async iteration)', async () => {
    const started = performance.now();
    const source = createSyntheticSource({
      symbols: SYMBOLS,
      seed: ++seed,
      tradesPerSecond: RATE_PER_S,
      startTs: START_MS,
      limit: TRADES_PER_OP,
    });
    for await (const tick of source.trades({ signal: new AbortController().signal })) void tick;
    record('deterministic source, history mode (async iteration)', performance.now() - started);
  });

  bench('deterministic candles of one symbol (trades folded per minute)', () => {
    const started = performance.now();
    const model = createSyntheticModel({
      symbols: SYMBOLS,
      seed: ++seed,
      tradesPerSecond: RATE_PER_S,
    });
    // One symbol's share is RATE_PER_S / 4 per second: this range holds about TRADES_PER_OP trades.
    const spanMs = Math.round(TRADES_PER_OP / (RATE_PER_S / SYMBOLS.length) / 60) * 60_000;
    for (const bar of model.candles(SYMBOLS[0]!, START_MS, START_MS + spanMs)) void bar;
    record(
      'deterministic candles of one symbol (trades folded per minute)',
      performance.now() - started,
    );
  });
});
