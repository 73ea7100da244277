import { describe, expect, it } from 'vitest';
import { cannotShow, price, tokenNeeded, volume } from './messages.js';

describe('what the chart page says', () => {
  it('an unknown symbol in words, with the symbols there are, not the raw code', () => {
    const text = cannotShow('DOGE-USD', 'unknown_symbol', ['BTC-USD', 'ETH-USD']);
    expect(text).toBe('DOGE-USD is not a symbol this platform has; try BTC-USD, ETH-USD.');
    expect(text).not.toContain('unknown_symbol');
  });

  it('another failure keeps its reason and says the chart stays', () => {
    expect(cannotShow('BTC-USD', 'HTTP 503', [])).toMatch(/Could not load BTC-USD: HTTP 503\./);
  });

  it('a missing or refused token says a token is needed', () => {
    expect(tokenNeeded(false)).toMatch(/needs an access token/);
    expect(tokenNeeded(true)).toMatch(/refused this token/);
  });

  it('prices and volumes without float noise', () => {
    expect(price(37000.1 + 0.2)).toBe('37000.3');
    expect(price(0.000012346)).toBe('0.00001235');
    expect(volume(1234.5)).toBe('1.23K');
    expect(volume(0.5)).toBe('0.5');
  });
});
