import type { SpanBar, UnavailableRange } from '@candlestream/core';
import {
  BACKFILL_MESSAGE_VERSION,
  HOUR_MS,
  MINUTE_MS,
  candleRecord,
  encodeBackfillMessage,
  parseSymbol,
} from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import {
  capUnavailable,
  chunks,
  mergeUnavailable,
  pieceCandles,
  rangesFrom,
  tailState,
  unavailableWithin,
} from './backfill.js';

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

  it('an hour or a day candle resumes where it ends, not after its first minute', () => {
    const bar = { time: T + 5 * HOUR_MS, open: 1, high: 2, low: 1, close: 2, volume: 3 };
    const hour = encodeBackfillMessage(candleRecord(BTC, { ...bar, span: '1h' }));
    const day = encodeBackfillMessage(candleRecord(BTC, { ...bar, time: T, span: '1d' }));
    expect(tailState(record(9, hour))).toEqual({
      over: false,
      candles: 10,
      resumeAt: T + 6 * HOUR_MS,
    });
    expect(tailState(record(0, day))).toEqual({
      over: false,
      candles: 1,
      resumeAt: T + 24 * HOUR_MS,
    });
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

const bar = (time: number, span?: SpanBar['span']): SpanBar => ({
  time,
  open: 10,
  high: 12,
  low: 9,
  close: 11,
  volume: 1,
  ...(span ? { span } : {}),
});
const m = (k: number): number => T + k * MINUTE_MS;
const h = (k: number): number => T + k * HOUR_MS;

describe('the candles a piece writes', () => {
  it('keeps the candles whose span overlaps the piece, ascending, an hour reaching outside it too', () => {
    const piece = { from: m(90), to: m(150) };
    const fetched = [bar(m(120)), bar(h(0), '1h'), bar(h(1), '1h'), bar(h(2), '1h'), bar(m(89))];
    const { write, writtenUntil, invalid } = pieceCandles(fetched, piece, -Infinity);
    // h(0) ends at m(60), m(89) at m(90): neither overlaps [m(90), m(150)).
    expect(write).toEqual([bar(h(1), '1h'), bar(h(2), '1h')]);
    expect(writtenUntil).toBe(h(3));
    expect(invalid).toBe(0);
  });

  it('drops a candle starting before the end of the last one written (an hour two pieces fetched)', () => {
    // The previous piece [m(0), m(90)) wrote hour 1 (to m(120)); this piece fetched it again.
    const piece = { from: m(90), to: m(180) };
    const { write, writtenUntil } = pieceCandles([bar(h(1), '1h'), bar(h(2), '1h')], piece, h(2));
    expect(write).toEqual([bar(h(2), '1h')]);
    expect(writtenUntil).toBe(h(3));
  });

  it('at the seam where minutes begin mid-hour, the hour wins: the minutes inside it are dropped', () => {
    // Minute history starts at m(100): hours 0 and 1 came as hours, minutes from m(100) on.
    const piece = { from: m(0), to: m(150) };
    const minutes = [100, 110, 119, 120, 121, 149].map((k) => bar(m(k)));
    const { write, writtenUntil } = pieceCandles(
      [...minutes, bar(h(1), '1h'), bar(h(0), '1h')],
      piece,
      -Infinity,
    );
    expect(write).toEqual([
      bar(h(0), '1h'),
      bar(h(1), '1h'),
      bar(m(120)),
      bar(m(121)),
      bar(m(149)),
    ]);
    expect(writtenUntil).toBe(m(150));
  });

  it('a day and its first hour at the same time: the day first, the hours inside it dropped', () => {
    const { write } = pieceCandles(
      [bar(h(0), '1h'), bar(h(0), '1d'), bar(h(23), '1h'), bar(h(24), '1h')],
      { from: m(0), to: h(25) },
      -Infinity,
    );
    expect(write).toEqual([bar(h(0), '1d'), bar(h(24), '1h')]);
  });

  it('counts and leaves out invalid bars', () => {
    const bad = { ...bar(m(3)), high: 1 };
    const { write, invalid } = pieceCandles([bar(m(2)), bad], { from: m(0), to: m(10) }, m(0));
    expect(write).toEqual([bar(m(2))]);
    expect(invalid).toBe(1);
  });
});

const gap = (from: number, to: number, reason: string, stored?: '1h' | '1d'): UnavailableRange => ({
  from,
  to,
  reason,
  ...(stored ? { stored } : {}),
});

describe('merging what the source could not provide', () => {
  it('joins adjacent or overlapping entries of one reason and stored kind across pieces', () => {
    const hours = 'hourly candles stored instead';
    const merged = mergeUnavailable([
      gap(m(2_000), m(4_020), hours, '1h'),
      gap(m(0), m(2_040), hours, '1h'), // the piece's last hour reaches into the next piece
      gap(m(4_020), m(5_000), hours, '1h'),
      gap(m(5_000), m(6_000), 'rate limited'),
      gap(m(6_000), m(7_000), hours), // same reason, nothing stored: another kind
    ]);
    expect(merged).toEqual([
      gap(m(0), m(5_000), hours, '1h'),
      gap(m(5_000), m(6_000), 'rate limited'),
      gap(m(6_000), m(7_000), hours),
    ]);
  });

  it('where kinds overlap, the earlier entry keeps the overlap (its coarser candle was written first)', () => {
    const merged = mergeUnavailable([
      gap(h(0), h(48), 'days', '1d'),
      gap(h(40), h(60), 'hours', '1h'),
      gap(h(41), h(47), 'rate limited'),
    ]);
    expect(merged).toEqual([gap(h(0), h(48), 'days', '1d'), gap(h(48), h(60), 'hours', '1h')]);
  });

  it('a year of pieces, each with its entry, becomes one entry', () => {
    const pieces = chunks({ from: T, to: T + 365 * 24 * HOUR_MS }, 2_000);
    expect(pieces.length).toBeGreaterThan(260);
    const merged = mergeUnavailable(
      pieces.map((p) => gap(p.from, Math.ceil(p.to / HOUR_MS) * HOUR_MS, 'hours', '1h')),
    );
    expect(merged).toEqual([gap(T, T + 365 * 24 * HOUR_MS, 'hours', '1h')]);
  });

  it("cuts entries to the job's ranges (an hour reaching past a range's end stored nothing there)", () => {
    const ranges = [
      { from: m(0), to: m(90) },
      { from: m(100), to: m(200) },
      { from: m(300), to: m(400) },
    ];
    expect(
      unavailableWithin([gap(m(0), m(120), 'hours', '1h'), gap(m(250), m(500), 'x')], ranges),
    ).toEqual([
      gap(m(0), m(90), 'hours', '1h'),
      gap(m(100), m(120), 'hours', '1h'),
      gap(m(300), m(400), 'x'),
    ]);
    expect(unavailableWithin([gap(m(200), m(300), 'x')], ranges)).toEqual([]);
  });

  it('keeps at most the limit, the rest summed up in one entry without stored', () => {
    const many = [...Array(5).keys()].map((k) => gap(h(2 * k), h(2 * k + 1), `r${k}`, '1h'));
    expect(capUnavailable(many, 5)).toEqual(many);
    expect(capUnavailable(many, 3)).toEqual([
      many[0],
      many[1],
      { from: h(4), to: h(9), reason: '3 ranges not provided in full, the first: r2' },
    ]);
  });
});
