/**
 * Test fixtures for the domain: trade builders (and, for convenience, the seeded random source,
 * which lives in the main entry). Exported as `@candlestream/core/testing`, never from the main
 * entry, so production code cannot lean on the fixtures.
 */
import type { MarketSymbol } from './symbols.js';
import type { Tick } from './ticks.js';
import { seededRandom } from './random.js';

export { seededRandom };

/** Fisher-Yates shuffle into a new array. */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

let nextId = 0;

export function makeTick(fields: Partial<Tick> & Pick<Tick, 'ts' | 'price'>): Tick {
  return {
    v: 1,
    symbol: 'BTC-USD' as MarketSymbol,
    size: 1,
    side: 'buy',
    id: `t${nextId++}`,
    source: 'synthetic',
    ...fields,
  };
}

export interface RandomTicksOptions {
  seed: number;
  count: number;
  from: number;
  /** Trades spread uniformly over [from, from + spanMs). */
  spanMs: number;
  symbols?: MarketSymbol[];
  /** Round trade times to this many ms, to force same-millisecond ties. Default 1. */
  tsStepMs?: number;
}

/**
 * Random trades: a random walk of prices with decimal sizes (sums that float addition gets
 * wrong), sorted by time, unique ids per symbol.
 */
export function randomTicks(options: RandomTicksOptions): Tick[] {
  const random = seededRandom(options.seed);
  const symbols = options.symbols ?? ['BTC-USD' as MarketSymbol];
  const step = options.tsStepMs ?? 1;
  const prices = new Map(symbols.map((s, i) => [s, 100 * (i + 1)]));
  const ticks: Tick[] = [];
  for (let i = 0; i < options.count; i++) {
    const symbol = symbols[Math.floor(random() * symbols.length)]!;
    const price = Math.max(0.01, prices.get(symbol)! * (1 + (random() - 0.5) * 0.002));
    prices.set(symbol, price);
    const ts = options.from + Math.floor((random() * options.spanMs) / step) * step;
    ticks.push({
      v: 1,
      symbol,
      ts,
      price: Math.round(price * 100) / 100,
      size: Math.round(random() * 10_000) / 1_000 + 0.001,
      side: random() < 0.5 ? 'buy' : 'sell',
      id: `${options.seed}-${i}`,
      source: 'synthetic',
    });
  }
  return ticks.sort((a, b) => a.ts - b.ts);
}
