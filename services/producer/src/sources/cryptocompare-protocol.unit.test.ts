import type { MarketSymbol } from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import type { CcMessage } from './cryptocompare-protocol.js';
import {
  RecentIds,
  decodeMessage,
  pairKey,
  parseTrade,
  sideFromFlags,
  tradeSubscription,
} from './cryptocompare-protocol.js';

const BTC_USD = 'BTC-USD' as MarketSymbol;
const pairs = new Map([[pairKey(BTC_USD), BTC_USD]]);

/** A trade frame as the streamer sends it (documented example, TSNS added). */
function frame(fields: Record<string, unknown> = {}): CcMessage {
  return {
    TYPE: '0',
    M: 'Coinbase',
    FSYM: 'BTC',
    TSYM: 'USD',
    F: '1',
    ID: '12345678',
    TS: 1_700_000_000,
    Q: 0.01,
    P: 32_500.12,
    TOTAL: 325.0012,
    RTS: 1_700_000_000,
    TSNS: 123_456_789,
    RTSNS: 200_000_000,
    ...fields,
  };
}

describe('tradeSubscription', () => {
  it('names the trade channel of a pair on an exchange', () => {
    expect(tradeSubscription('Coinbase', BTC_USD)).toBe('0~Coinbase~BTC~USD');
  });
});

describe('decodeMessage', () => {
  it('normalises a numeric TYPE to the documented string', () => {
    const decoded = decodeMessage('{"TYPE":999,"MESSAGE":"HEARTBEAT"}');
    expect(decoded).toEqual({ ok: true, message: { TYPE: '999', MESSAGE: 'HEARTBEAT' } });
  });

  it.each([
    ['{not json', 'invalid-json'],
    ['[1,2]', 'not-an-object'],
    ['null', 'not-an-object'],
    ['{"MESSAGE":"x"}', 'no-type'],
  ])('refuses %s as %s', (text, kind) => {
    expect(decodeMessage(text)).toMatchObject({ ok: false, kind });
  });
});

describe('parseTrade', () => {
  it('maps every field, the time to the millisecond from TS and TSNS', () => {
    expect(parseTrade(frame(), pairs)).toEqual({
      ok: true,
      tick: {
        v: 1,
        symbol: 'BTC-USD',
        ts: 1_700_000_000_123,
        price: 32_500.12,
        size: 0.01,
        side: 'sell',
        id: 'Coinbase:12345678',
        source: 'cryptocompare',
      },
    });
  });

  it('uses whole seconds when TSNS is absent, and accepts a numeric ID and F', () => {
    const parsed = parseTrade(frame({ TSNS: undefined, ID: 42, F: 2 }), pairs);
    expect(parsed).toMatchObject({
      ok: true,
      tick: { ts: 1_700_000_000_000, id: 'Coinbase:42', side: 'buy' },
    });
  });

  it.each([
    [frame({ P: 0 }), 'bad-trade'],
    [frame({ P: '100' }), 'bad-trade'],
    [frame({ Q: -1 }), 'bad-trade'],
    [frame({ TS: 1_700_000_000.5 }), 'bad-trade'],
    [frame({ TS: 1_700_000_000_000 }), 'bad-trade'], // milliseconds: year 55000
    [frame({ TSNS: 1_000_000_000 }), 'bad-trade'],
    [frame({ ID: '' }), 'bad-trade'],
    [frame({ M: undefined }), 'bad-trade'],
    [frame({ F: 'x' }), 'bad-trade'],
    [frame({ FSYM: undefined }), 'bad-trade'],
    [frame({ FSYM: 'ETH' }), 'unknown-pair'],
  ])('refuses a bad trade (%#)', (message, kind) => {
    expect(parseTrade(message, pairs)).toMatchObject({ ok: false, kind });
  });
});

describe('sideFromFlags', () => {
  it.each([
    [1, 'sell'],
    [2, 'buy'],
    [4, 'unknown'],
    [9, 'sell'], // sell + reversed
    [10, 'buy'],
    [3, 'unknown'],
    [0, 'unknown'],
  ] as const)('flags %i → %s', (flags, side) => {
    expect(sideFromFlags(flags)).toBe(side);
  });
});

describe('RecentIds', () => {
  it('accepts an id once', () => {
    const ids = new RecentIds(10);
    expect(ids.add('a', 1_000)).toBe(true);
    expect(ids.add('a', 1_000)).toBe(false);
    expect(ids.add('b', 1_000)).toBe(true);
  });

  it('stays bounded and treats trades older than a forgotten one as seen', () => {
    const ids = new RecentIds(3);
    for (let i = 0; i < 10; i++) expect(ids.add(`t${i}`, 1_000 + i)).toBe(true);
    expect(ids.size).toBe(3);
    // t6 was forgotten; anything before its time can no longer be checked, so it is a repeat.
    expect(ids.add('t2', 1_002)).toBe(false);
    expect(ids.add('t9', 1_009)).toBe(false);
    // At or after the line, a new id is new.
    expect(ids.add('t10', 1_006)).toBe(true);
  });

  it('starts the line at a published time', () => {
    const ids = new RecentIds(3, 5_000);
    expect(ids.add('old', 4_999)).toBe(false);
    expect(ids.add('same-ms', 5_000)).toBe(true);
  });
});
