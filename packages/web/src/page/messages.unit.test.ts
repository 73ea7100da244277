import { describe, expect, it } from 'vitest';
import { cannotShow, fewCandles, price, tokenNeeded, volume } from './messages.js';

const MINUTE_MS = 60_000;
const NOW = Date.UTC(2026, 4, 12, 14, 35, 20);

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

  it('a chart with few candles says how many, since when (UTC, as the axis) and why no older ones', () => {
    const since = Date.UTC(2026, 4, 12, 14, 2);
    expect(fewCandles(3, since, MINUTE_MS, NOW)).toBe(
      "3 candles so far, since 14:02 UTC. Older history isn't stored yet; new candles are added as live trades arrive.",
    );
    expect(fewCandles(1, since, MINUTE_MS, NOW)).toMatch(/^1 candle so far, since 14:02 UTC\./);
  });

  it('the day when the first candle is not from today, and only the day for daily candles', () => {
    const yesterday = Date.UTC(2026, 4, 11, 9, 5);
    expect(fewCandles(40, yesterday, 5 * MINUTE_MS, NOW)).toMatch(/since 11 May 09:05 UTC\./);
    expect(fewCandles(2, Date.UTC(2026, 4, 11), 86_400_000, NOW)).toMatch(/since 11 May\./);
    expect(fewCandles(2, Date.UTC(2025, 11, 29), 7 * 86_400_000, NOW)).toMatch(
      /since 29 Dec 2025\./,
    );
  });

  it('no candles at all: waiting for the first live trades', () => {
    expect(fewCandles(0, undefined, MINUTE_MS, NOW)).toBe(
      "No candles yet: waiting for the first live trades. Older history isn't stored yet.",
    );
  });
});
