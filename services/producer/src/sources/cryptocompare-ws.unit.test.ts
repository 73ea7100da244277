import { seededRandom } from '@candlestream/core/testing';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RECONNECT_BACKOFF,
  MIN_RECONNECT_DELAY_MS,
  reconnectDelayMs,
} from './cryptocompare-ws.js';

describe('reconnectDelayMs', () => {
  it('never reconnects sooner than 5 s, doubling with jitter up to 60 s', () => {
    const random = seededRandom(15);
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(60_000, 10_000 * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const delayMs = reconnectDelayMs(attempt, DEFAULT_RECONNECT_BACKOFF, undefined, random);
        expect(delayMs).toBeGreaterThanOrEqual(MIN_RECONNECT_DELAY_MS);
        expect(delayMs).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delayMs).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('keeps the 5 s floor under a backoff configured shorter', () => {
    const tooFast = { initialDelayMs: 500, maxDelayMs: 30_000, jitter: 0.5 };
    expect(reconnectDelayMs(0, tooFast, undefined, () => 1)).toBe(5_000);
    expect(reconnectDelayMs(6, tooFast, undefined, () => 0)).toBe(30_000);
  });
});
