import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { isCanonicalSymbol, parseSymbol, parseSymbolList, splitSymbol } from './symbols.js';

describe('parseSymbol', () => {
  it.each([
    ['BTC-USD', 'BTC-USD'],
    ['BTCUSD', 'BTC-USD'],
    ['BTC/USD', 'BTC-USD'],
    ['btc-usd', 'BTC-USD'],
    ['btc_usd', 'BTC-USD'],
    ['  eth/usdt ', 'ETH-USDT'],
    ['ETHUSDT', 'ETH-USDT'],
    ['BTCTUSD', 'BTC-TUSD'],
    ['1INCHUSD', '1INCH-USD'],
    ['USDCUSD', 'USDC-USD'],
    ['ethbtc', 'ETH-BTC'],
  ])('reads %j as %s', (input, expected) => {
    expect(parseSymbol(input)).toBe(expected);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['BTC', /no known quote/],
    ['XYZABC', /no known quote/],
    ['USD', /no known quote/],
    ['BTC--USD', /not BASE-QUOTE/],
    ['BTC-USD-EUR', /not BASE-QUOTE/],
    ['BTC USD', /not BASE-QUOTE/],
    ['BTC-', /not BASE-QUOTE/],
    ['-USD', /not BASE-QUOTE/],
    ['ÄBC-USD', /not BASE-QUOTE/],
    ['BTC-USD;DROP', /not BASE-QUOTE/],
    ['BTC-BTC', /same base and quote/],
    ['ABCDEFGHIJKLMN-USD', /longer than 12/],
    ['A'.repeat(40), /longer than 32/],
  ])('refuses %j with a clear error', (input, message) => {
    let caught: unknown;
    try {
      parseSymbol(input);
    } catch (err) {
      caught = err;
    }
    expect(AppError.is(caught, 'INVALID_ARGUMENT')).toBe(true);
    expect((caught as Error).message).toMatch(message);
  });

  it('tells canonical symbols from other spellings', () => {
    expect(isCanonicalSymbol('BTC-USD')).toBe(true);
    expect(isCanonicalSymbol('btc-usd')).toBe(false);
    expect(isCanonicalSymbol('BTCUSD')).toBe(false);
    expect(isCanonicalSymbol('garbage!')).toBe(false);
  });

  it('splits a canonical symbol into base and quote', () => {
    expect(splitSymbol(parseSymbol('1inch/usdt'))).toEqual({ base: '1INCH', quote: 'USDT' });
  });
});

describe('parseSymbolList', () => {
  it('canonicalises, drops repeats and blanks, keeps order', () => {
    expect(parseSymbolList('btcusd, ETH-USD,,BTC/USD ,sol-usd')).toEqual([
      'BTC-USD',
      'ETH-USD',
      'SOL-USD',
    ]);
  });

  it('refuses an empty list and names a bad member', () => {
    expect(() => parseSymbolList(' , ')).toThrow(/empty/);
    expect(() => parseSymbolList('BTC-USD,nonsense!')).toThrow(/nonsense!/);
  });
});
