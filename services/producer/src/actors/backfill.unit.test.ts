import {
  BACKFILL_MESSAGE_VERSION,
  MINUTE_MS,
  candleRecord,
  encodeBackfillMessage,
  parseSymbol,
} from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import { chunks, rangesFrom, tailState } from './backfill.js';

const BTC = parseSymbol('BTC-USD');
const T = Date.UTC(2024, 0, 1);
const record = (offset: number, value: string) => ({
  offset: String(offset),
  value: Buffer.from(value),
});

describe('backfill job topic tail', () => {
  it('an empty topic starts the job from its first range', () => {
    expect(tailState(undefined)).toEqual({ over: false, candles: 0, resumeAt: undefined });
  });

  it('an end or failed record means the fetch is over (a restart after the write)', () => {
    const end = { v: BACKFILL_MESSAGE_VERSION, type: 'end', id: 'j1', candles: 3, unavailable: [] };
    const failed = { v: BACKFILL_MESSAGE_VERSION, type: 'failed', id: 'j1', error: 'no' };
    expect(tailState(record(3, JSON.stringify(end)))).toEqual({ over: true, type: 'end' });
    expect(tailState(record(0, JSON.stringify(failed)))).toEqual({ over: true, type: 'failed' });
  });

  it('a candle resumes after its minute, counting the records before it', () => {
    const bar = { time: T + 5 * MINUTE_MS, open: 1, high: 2, low: 1, close: 2, volume: 3 };
    expect(tailState(record(41, encodeBackfillMessage(candleRecord(BTC, bar))))).toEqual({
      over: false,
      candles: 42,
      resumeAt: T + 6 * MINUTE_MS,
    });
    expect(tailState(record(0, 'garbage'))).toHaveProperty('unreadable');
  });

  it('resumes inside or between ranges, and chunks what is left', () => {
    const ranges = [
      { from: T, to: T + 10 * MINUTE_MS },
      { from: T + 20 * MINUTE_MS, to: T + 30 * MINUTE_MS },
    ];
    expect(rangesFrom(ranges, undefined)).toEqual(ranges);
    expect(rangesFrom(ranges, T + 4 * MINUTE_MS)).toEqual([
      { from: T + 4 * MINUTE_MS, to: T + 10 * MINUTE_MS },
      ranges[1],
    ]);
    expect(rangesFrom(ranges, T + 15 * MINUTE_MS)).toEqual([ranges[1]]);
    expect(rangesFrom(ranges, T + 30 * MINUTE_MS)).toEqual([]);
    expect(chunks(ranges[0]!, 4)).toEqual([
      { from: T, to: T + 4 * MINUTE_MS },
      { from: T + 4 * MINUTE_MS, to: T + 8 * MINUTE_MS },
      { from: T + 8 * MINUTE_MS, to: T + 10 * MINUTE_MS },
    ]);
  });
});
