import { describe, expect, it } from 'vitest';
import type { BarUpdate } from '@candlestream/core';
import { MINUTE_MS } from '@candlestream/core';
import type { SentMark } from './protocol.js';
import { barMessage, bufferUpdate, markSent, parseClientMessage, shouldSend } from './protocol.js';
import { barUpdate } from './testing.js';

const T0 = Date.UTC(2024, 0, 1, 12, 0);
const MAX_BYTES = 4_096;

function reasonOf(text: string): string {
  const decoded = parseClientMessage(text, MAX_BYTES);
  if (decoded.ok) throw new Error(`accepted ${text}`);
  return decoded.reason;
}

describe('parseClientMessage', () => {
  it('accepts the symbol spellings and TradingView resolutions the rest of the API does', () => {
    for (const symbol of ['BTC-USD', 'btc-usd', 'BTCUSD', 'BTC/USD', ' btc_usd ']) {
      for (const [interval, canonical] of [
        ['1m', '1m'],
        ['1', '1m'],
        ['60', '1h'],
        ['D', '1d'],
        ['1W', '1w'],
      ]) {
        const text = JSON.stringify({ type: 'subscribe', symbol, interval });
        expect(parseClientMessage(text, MAX_BYTES)).toEqual({
          ok: true,
          value: { type: 'subscribe', symbol: 'BTC-USD', interval: canonical },
        });
      }
    }
    expect(parseClientMessage('{"type":"ping","extra":1}', MAX_BYTES)).toEqual({
      ok: true,
      value: { type: 'ping' },
    });
  });

  it('takes a replay session id, and says what is wrong with one', () => {
    const text = JSON.stringify({
      type: 'subscribe',
      session: 'chart-0a1b',
      symbol: 'btc-usd',
      interval: '5m',
    });
    expect(parseClientMessage(text, MAX_BYTES)).toEqual({
      ok: true,
      value: { type: 'subscribe', session: 'chart-0a1b', symbol: 'BTC-USD', interval: '5m' },
    });
    for (const session of [7, '', 'a b', 'x'.repeat(65), 'replay.x']) {
      const bad = JSON.stringify({
        type: 'unsubscribe',
        session,
        symbol: 'BTC-USD',
        interval: '1m',
      });
      expect(reasonOf(bad)).toMatch(/session must be a replay session id/);
    }
    expect(barMessage(barUpdate('BTC-USD', '1m', T0, 100), 'chart-0a1b')).toMatchObject({
      type: 'bar',
      session: 'chart-0a1b',
    });
  });

  it('says what is wrong with a refused message', () => {
    expect(reasonOf('{')).toMatch(/^invalid JSON/);
    expect(reasonOf('"subscribe"')).toBe('message must be a JSON object');
    expect(reasonOf('null')).toBe('message must be a JSON object');
    expect(reasonOf('{}')).toBe('type missing is not one of subscribe, unsubscribe, ping');
    expect(reasonOf('{"type":"sub"}')).toBe(
      'type "sub" is not one of subscribe, unsubscribe, ping',
    );
    expect(reasonOf('{"type":"subscribe","interval":"1m"}')).toBe('symbol must be a string');
    expect(reasonOf('{"type":"unsubscribe","symbol":"BTC-USD"}')).toBe('interval must be a string');
    expect(reasonOf('{"type":"subscribe","symbol":"BTC-USD","interval":"2m"}')).toMatch(
      /^interval "2m" is not one of 1m, 5m.*or a TradingView resolution \(1, 5/,
    );
    expect(reasonOf('{"type":"subscribe","symbol":"BTC-BTC","interval":"1m"}')).toMatch(
      /same base and quote/,
    );
    expect(reasonOf(`{"type":"ping","pad":"${'x'.repeat(MAX_BYTES)}"}`)).toMatch(/bytes, over/);
  });
});

describe('shouldSend', () => {
  const at = (offset: number, final = false): BarUpdate =>
    barUpdate('BTC-USD', '1m', T0 + offset * MINUTE_MS, 1, final);
  /** The mark after sending `updates` in turn, each checked against the rule. */
  const sent = (...updates: BarUpdate[]): SentMark | undefined => {
    let mark: SentMark | undefined;
    for (const update of updates) {
      expect(shouldSend(mark, update)).toBe(true);
      mark = markSent(mark, update);
    }
    return mark;
  };

  it('sends anything first, then never an older forming bar', () => {
    expect(shouldSend(undefined, at(0))).toBe(true);
    expect(shouldSend(sent(at(0)), at(-1))).toBe(false);
    expect(shouldSend(sent(at(0)), at(1))).toBe(true);
    expect(shouldSend(sent(at(0, true)), at(1))).toBe(true);
    expect(shouldSend(sent(at(0), at(1, true)), at(0))).toBe(false);
  });

  it('sends updates of the same bar, except a forming one after its final', () => {
    expect(shouldSend(sent(at(0)), at(0))).toBe(true);
    expect(shouldSend(sent(at(0)), at(0, true))).toBe(true);
    expect(shouldSend(sent(at(0, true)), at(0, true))).toBe(true);
    expect(shouldSend(sent(at(0, true)), at(0))).toBe(false);
  });

  // Regression: a minute's final comes after the next minute's forming bar (allowed lateness),
  // and was dropped as older, so /stream never sent final: true.
  it('sends the final of a bar sent forming after the next bar formed, then nothing older', () => {
    const mark = sent(at(0), at(1), at(2));
    expect(shouldSend(mark, at(0, true))).toBe(true);
    const closed = markSent(mark, at(0, true));
    expect(closed).toMatchObject({ time: T0 + 2 * MINUTE_MS, final: false, closed: T0 });
    expect(shouldSend(closed, at(0))).toBe(false);
    expect(shouldSend(closed, at(1))).toBe(false);
    expect(shouldSend(closed, at(1, true))).toBe(true);
    const next = markSent(closed, at(1, true));
    expect(shouldSend(next, at(0, true))).toBe(false);
    expect(shouldSend(next, at(1, true))).toBe(true); // a correction of the newest final
    expect(shouldSend(next, at(2, true))).toBe(true);
  });

  it('skips the final of an older bar this subscription was never sent', () => {
    expect(shouldSend(sent(at(0)), at(-1, true))).toBe(false);
  });

  it('remembers a bounded number of open bars', () => {
    const many = Array.from({ length: 40 }, (_, i) => at(i));
    const mark = sent(...many);
    expect(mark?.open.length).toBeLessThanOrEqual(16);
    expect(shouldSend(mark, at(39, true))).toBe(true);
  });
});

describe('bufferUpdate', () => {
  it('keeps only the newest forming version of a bar, and every final and newer bar', () => {
    const pending: BarUpdate[] = [];
    const a = barUpdate('BTC-USD', '1m', T0, 1);
    const b = barUpdate('BTC-USD', '1m', T0, 2);
    const bFinal = barUpdate('BTC-USD', '1m', T0, 3, true);
    const late = barUpdate('BTC-USD', '1m', T0, 4);
    const next = barUpdate('BTC-USD', '1m', T0 + MINUTE_MS, 5);
    for (const update of [a, b, bFinal, late, next]) bufferUpdate(pending, update);
    expect(pending).toEqual([bFinal, late, next]);
  });
});

describe('barMessage', () => {
  it('carries the open time as ISO-8601, like /ohlcv', () => {
    const update = barUpdate('ETH-USD', '1h', T0, 2_000.5, true);
    expect(JSON.parse(JSON.stringify(barMessage(update)))).toEqual({
      type: 'bar',
      symbol: 'ETH-USD',
      interval: '1h',
      bar: {
        time: '2024-01-01T12:00:00.000Z',
        open: 2_000.5,
        high: 2_000.5,
        low: 2_000.5,
        close: 2_000.5,
        volume: 1,
      },
      final: true,
    });
  });
});
