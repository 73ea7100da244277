import type { Tick } from '@candlestream/core';
import { encodeTick, parseSymbol } from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import { newestPublishedPrices } from './resume-prices.js';

const BTC = parseSymbol('BTC-USD');
const ETH = parseSymbol('ETH-USD');
const SOL = parseSymbol('SOL-USD');
const T0 = Date.now() - 60_000; // decodeTick refuses trades far from the present

function record(tick: Partial<Tick>): { value: Buffer } {
  const full: Tick = {
    v: 1,
    symbol: BTC,
    ts: T0,
    price: 1,
    size: 1,
    side: 'buy',
    id: String(Math.random()),
    source: 'synthetic',
    ...tick,
  };
  return { value: Buffer.from(encodeTick(full)) };
}

describe('newestPublishedPrices', () => {
  it("takes each configured symbol's newest trade by time, from any source", () => {
    const prices = newestPublishedPrices(
      [
        record({ symbol: BTC, ts: T0 + 2, price: 50_000 }),
        record({ symbol: BTC, ts: T0 + 1, price: 49_000 }), // older, though read later
        record({ symbol: ETH, ts: T0, price: 3_000 }),
        record({ symbol: ETH, ts: T0, price: 3_001, source: 'cryptocompare' }), // a tie: later wins
        record({ symbol: parseSymbol('DOGE-USD'), ts: T0 + 5, price: 0.1 }), // not configured
      ],
      [BTC, ETH, SOL],
    );
    expect(prices).toEqual(
      new Map([
        [BTC, 50_000],
        [ETH, 3_001],
      ]),
    );
  });

  it('skips records that are not ticks', () => {
    const prices = newestPublishedPrices(
      [
        { value: null },
        { value: Buffer.from('not json') },
        { value: Buffer.from('{"v":99,"symbol":"BTC-USD"}') },
        record({ symbol: BTC, price: 42_000 }),
      ],
      [BTC],
    );
    expect(prices).toEqual(new Map([[BTC, 42_000]]));
  });
});
