import { describe, expect, it } from 'vitest';
import type { Tick } from './ticks.js';
import {
  compareTrades,
  decodeTick,
  encodeTick,
  fastTick,
  MAX_TICK_MESSAGE_BYTES,
  MAX_TICK_TS_MS,
  MIN_TICK_TS_MS,
  tickSchema,
} from './ticks.js';
import { validateWith } from './validation.js';

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

describe('the fast path of decodeTick', () => {
  /** Values each field may take: valid ones and every kind of wrong. */
  const variants: Record<string, unknown[]> = {
    v: [1, 2, '1', 1.0000001, undefined, null],
    symbol: ['BTC-USD', 'ETH-USDT', 'btc-usd', 'BTCUSD', 'BTC/USD', 'BTC-BTC', '', 7, undefined],
    ts: [
      1_700_000_000_123,
      MIN_TICK_TS_MS,
      MAX_TICK_TS_MS,
      MIN_TICK_TS_MS - 1,
      MAX_TICK_TS_MS + 1,
      1_700_000_000_123.5,
      1_700_000_000,
      '1700000000123',
      Number.NaN,
      undefined,
    ],
    price: [37_000.5, 1e-300, 0, -1, Number.MAX_SAFE_INTEGER, 2 ** 60, '1', null, undefined],
    size: [0.01, 5e-324, 0, -0.5, 1e20, true, undefined],
    side: ['buy', 'sell', 'unknown', 'BUY', '', undefined],
    id: [
      'abc-1',
      'x',
      '',
      'a'.repeat(128),
      'a'.repeat(129),
      'nul\u0000',
      'lone\uD800',
      5,
      undefined,
    ],
    source: ['cryptocompare', 'synthetic', 'file', 'backfill', 'replay', 'other', undefined],
  };

  it('accepts exactly what joi accepts, with the same value, field by field and at random', () => {
    const base: Record<string, unknown> = { ...valid };
    const cases: Record<string, unknown>[] = [];
    for (const [field, values] of Object.entries(variants)) {
      for (const value of values) cases.push({ ...base, [field]: value });
    }
    let seed = 17;
    const pick = <T>(list: readonly T[]): T => {
      seed = (seed * 48_271) % 2_147_483_647;
      return list[seed % list.length]!;
    };
    for (let i = 0; i < 3_000; i++) {
      const c: Record<string, unknown> = { extra: i };
      for (const [field, values] of Object.entries(variants)) c[field] = pick(values);
      cases.push(c);
    }
    let accepted = 0;
    for (const c of cases) {
      const byJoi = validateWith(tickSchema, c);
      const fast = fastTick(c);
      if (fast) {
        accepted += 1;
        expect(byJoi, JSON.stringify(c)).toEqual(fast);
      }
      // The decoder as a whole agrees with joi on every case, fast path or not.
      expect(decodeTick(JSON.stringify(c)).ok, JSON.stringify(c)).toBe(
        c['v'] === 1 ? byJoi.ok : false,
      );
    }
    // The fast path must actually carry the valid traffic, or it is not a fast path.
    expect(accepted).toBeGreaterThan(10);
    expect(fastTick({ ...valid })).toEqual({ ok: true, value: valid });
  });
});

describe('encodeTick', () => {
  it("writes the contract's example byte for byte, and text that reads back as the same tick", () => {
    expect(encodeTick(valid as Tick)).toBe(
      '{"v":1,"symbol":"BTC-USD","ts":1700000000123,"price":37000.5,"size":0.01,"side":"buy","id":"abc-1","source":"cryptocompare"}',
    );
    const odd = {
      ...valid,
      id: 'quote " back \\ slash \n newline \u2028 sep 😀',
      price: 1e-7,
      size: 123_456.789,
    } as Tick;
    expect(JSON.parse(encodeTick(odd))).toEqual(odd);
    expect(decodeTick(encodeTick(odd))).toEqual({ ok: true, value: odd });
  });
});
