import { describe, expect, it } from 'vitest';
import type { Tick } from './ticks.js';
import { compareTrades, decodeTick, encodeTick, MAX_TICK_MESSAGE_BYTES } from './ticks.js';

const valid = {
  v: 1,
  symbol: 'BTC-USD',
  ts: 1_700_000_000_123,
  price: 37_000.5,
  size: 0.01,
  side: 'buy',
  id: 'abc-1',
  source: 'cryptocompare',
};

function reasonFor(value: unknown): string {
  const result = decodeTick(typeof value === 'string' ? value : JSON.stringify(value));
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.value)}`);
  return result.reason;
}

describe('tick-data messages', () => {
  it('decodes the contract example from bytes and from text', () => {
    const bytes = new TextEncoder().encode(JSON.stringify(valid));
    expect(decodeTick(bytes)).toEqual({ ok: true, value: valid });
    expect(decodeTick(JSON.stringify(valid))).toEqual({ ok: true, value: valid });
  });

  it('round-trips through encodeTick', () => {
    const decoded = decodeTick(encodeTick(valid as Tick));
    expect(decoded).toEqual({ ok: true, value: valid });
  });

  it('drops fields it does not know rather than refusing the trade', () => {
    expect(decodeTick(JSON.stringify({ ...valid, exchange: 'Coinbase' }))).toEqual({
      ok: true,
      value: valid,
    });
  });

  it.each([
    ['not json', /invalid JSON/],
    ['[1,2]', /must be a JSON object/],
    ['null', /must be a JSON object/],
    ['42', /must be a JSON object/],
  ])('refuses %j', (text, reason) => {
    expect(reasonFor(text)).toMatch(reason);
  });

  it('names an unknown or missing version', () => {
    expect(reasonFor({ ...valid, v: 2 })).toMatch(/unsupported tick message version 2/);
    expect(reasonFor({ ...valid, v: '1' })).toMatch(/unsupported tick message version "1"/);
    const { v: _v, ...noVersion } = valid;
    expect(reasonFor(noVersion)).toMatch(/no version field/);
  });

  it.each([
    [{ price: -1 }, /price must be a positive number/],
    [{ price: 0 }, /price must be a positive number/],
    [{ price: '37000.5' }, /price must be a number/],
    [{ size: 0 }, /size must be a positive number/],
    [{ ts: 1_700_000_000 }, /ts must be greater than or equal to/],
    [{ ts: 1_700_000_000_123.5 }, /ts must be an integer/],
    [{ ts: 5_000_000_000_000 }, /ts must be less than or equal to/],
    [{ side: 'long' }, /side must be one of/],
    [{ source: 'exchange' }, /source must be one of/],
    [{ symbol: 'btcusd' }, /not canonical BASE-QUOTE \(write BTC-USD\)/],
    [{ symbol: '???' }, /not canonical/],
    [{ id: '' }, /id is not allowed to be empty/],
    [{ id: 'x'.repeat(129) }, /id length must be less than or equal to 128/],
    // Regression: PostgreSQL refused these only after the live candles had counted them.
    [{ id: 'a\u0000b' }, /id contains U\+0000/],
    [{ id: 'a\ud800' }, /id contains a lone UTF-16 surrogate/],
    [{ id: '\udc00a' }, /id contains a lone UTF-16 surrogate/],
  ])('refuses %j with the reason', (patch, reason) => {
    expect(reasonFor({ ...valid, ...patch })).toMatch(reason);
  });

  it('keeps ids with any well-formed Unicode, astral characters included', () => {
    const id = 'trade-\u00e9-\ud83d\ude80';
    expect(decodeTick(JSON.stringify({ ...valid, id }))).toEqual({
      ok: true,
      value: { ...valid, id },
    });
  });

  it('reports every problem at once', () => {
    const reason = reasonFor({ ...valid, price: -1, side: 'long' });
    expect(reason).toMatch(/price/);
    expect(reason).toMatch(/side/);
  });

  it('refuses oversized and non-UTF-8 messages', () => {
    const huge = JSON.stringify({ ...valid, id: 'x', pad: 'y'.repeat(MAX_TICK_MESSAGE_BYTES) });
    expect(reasonFor(huge)).toMatch(/over 4096/);
    const bad = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);
    const result = decodeTick(bad);
    expect(result.ok === false && result.reason).toMatch(/not valid UTF-8/);
  });
});

describe('compareTrades', () => {
  it('orders by time, then by id in code-unit order', () => {
    const trades = [
      { ts: 2, id: 'a' },
      { ts: 1, id: 'b' },
      { ts: 1, id: 'B' },
      { ts: 1, id: 'a' },
    ];
    expect(trades.sort(compareTrades)).toEqual([
      { ts: 1, id: 'B' },
      { ts: 1, id: 'a' },
      { ts: 1, id: 'b' },
      { ts: 2, id: 'a' },
    ]);
    expect(compareTrades({ ts: 5, id: 'x' }, { ts: 5, id: 'x' })).toBe(0);
  });
});
