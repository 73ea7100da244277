/**
 * What correctness costs in the live aggregator: BarAggregator (trade-order open/close, duplicate
 * ids ignored, exact volume) beside a baseline that trusts arrival order and sums with `+=`.
 * Figures: trades aggregated per second (ops/s x TRADES_PER_OP).
 */
import { bench, describe } from 'vitest';
import { BarAggregator } from './aggregator.js';
import { exactSum } from './exact-sum.js';
import { floorBucket } from './intervals.js';
import { rollupBars } from './rollup.js';
import { aggregateTicks } from './aggregator.js';
import { randomTicks } from './testing.js';
import type { MarketSymbol } from './symbols.js';
import type { Tick } from './ticks.js';

const TRADES_PER_OP = 100_000;
const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD'] as MarketSymbol[];
const ticks = randomTicks({
  seed: 1,
  count: TRADES_PER_OP,
  from: Date.UTC(2024, 0, 1),
  spanMs: 3_600_000,
  symbols: SYMBOLS,
});

interface NaiveBar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

function naiveAggregate(trades: Tick[]): number {
  const forming = new Map<string, NaiveBar>();
  let closed = 0;
  for (const t of trades) {
    const time = floorBucket(t.ts, '1m');
    const bar = forming.get(t.symbol);
    if (!bar || bar.time !== time) {
      if (bar) closed++;
      forming.set(t.symbol, {
        time,
        open: t.price,
        high: t.price,
        low: t.price,
        close: t.price,
        volume: t.size,
      });
      continue;
    }
    bar.high = Math.max(bar.high, t.price);
    bar.low = Math.min(bar.low, t.price);
    bar.close = t.price;
    bar.volume += t.size;
  }
  return closed;
}

describe(`aggregate ${TRADES_PER_OP} trades into 1m bars (4 symbols)`, () => {
  bench('baseline: arrival order, += volume, no de-duplication', () => {
    naiveAggregate(ticks);
  });
  bench('BarAggregator: trade order, exact volume, duplicates ignored', () => {
    const agg = new BarAggregator({ interval: '1m' });
    for (const t of ticks) agg.add(t);
  });
});

const sizes = ticks.map((t) => t.size);
describe(`sum ${TRADES_PER_OP} trade sizes`, () => {
  bench('baseline: +=', () => {
    let s = 0;
    for (const x of sizes) s += x;
    if (s < 0) throw new Error('unreachable');
  });
  bench('exactSum (Shewchuk, correctly rounded)', () => {
    exactSum(sizes);
  });
});

const minutes = aggregateTicks(ticks, '1m').get(SYMBOLS[0]!)!;
describe('1h bars for one symbol', () => {
  bench('baseline: aggregate the trades again', () => {
    aggregateTicks(
      ticks.filter((t) => t.symbol === SYMBOLS[0]),
      '1h',
    );
  });
  bench('roll up 60 1m bars', () => {
    rollupBars(minutes, '1m', '1h');
  });
});
