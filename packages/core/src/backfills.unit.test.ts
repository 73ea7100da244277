import { describe, expect, it } from 'vitest';
import type {
  BackfillCommand,
  BackfillRecord,
  BackfillReport,
  BackfillRequest,
} from './backfills.js';
import {
  backfillTopicName,
  candleRecord,
  decodeBackfillCommand,
  decodeBackfillRecord,
  decodeBackfillReport,
  decodeBackfillRequest,
  encodeBackfillMessage,
  mergeRanges,
  minuteAligned,
  minutesIn,
  missingRanges,
  subtractRanges,
} from './backfills.js';
import type { MarketSymbol } from './symbols.js';
import { MINUTE_MS } from './time.js';

const T0 = Date.UTC(2026, 10, 1);
const m = (n: number): number => T0 + n * MINUTE_MS;
const BTC = 'BTC-USD' as MarketSymbol;

describe('backfill ranges', () => {
  it('subtracts stored coverage from a wanted range, leaving the holes and the edges', () => {
    expect(
      subtractRanges({ from: m(0), to: m(100) }, [
        { from: m(10), to: m(20) },
        { from: m(15), to: m(30) },
        { from: m(50), to: m(60) },
        { from: m(90), to: m(200) },
      ]),
    ).toEqual([
      { from: m(0), to: m(10) },
      { from: m(30), to: m(50) },
      { from: m(60), to: m(90) },
    ]);
    expect(subtractRanges({ from: m(0), to: m(10) }, [{ from: m(-5), to: m(20) }])).toEqual([]);
    expect(subtractRanges({ from: m(0), to: m(10) }, [])).toEqual([{ from: m(0), to: m(10) }]);
  });

  it('merges touching and overlapping ranges, and counts whole minutes', () => {
    const merged = mergeRanges([
      { from: m(5), to: m(7) },
      { from: m(0), to: m(5) },
      { from: m(9), to: m(9) },
      { from: m(8), to: m(10) },
    ]);
    expect(merged).toEqual([
      { from: m(0), to: m(7) },
      { from: m(8), to: m(10) },
    ]);
    expect(minutesIn(merged)).toBe(9);
    expect(minuteAligned({ from: m(1) + 30_000, to: m(3) + 1 })).toEqual({ from: m(1), to: m(4) });
  });
});

describe('backfill messages', () => {
  it('round-trips a request, a command, a report and the records of a job topic', () => {
    const request: BackfillRequest = {
      v: 1,
      id: 'job-1',
      symbol: BTC,
      from: m(0),
      to: m(60),
      requestedAt: m(61),
    };
    expect(decodeBackfillRequest(encodeBackfillMessage(request))).toEqual({
      ok: true,
      value: request,
    });
    const command: BackfillCommand = {
      v: 1,
      id: 'job-1',
      symbol: BTC,
      topic: backfillTopicName(BTC, 'job-1'),
      ranges: [{ from: m(0), to: m(60) }],
    };
    expect(decodeBackfillCommand(encodeBackfillMessage(command))).toEqual({
      ok: true,
      value: command,
    });
    expect(command.topic).toBe('backfill.BTC-USD.job-1');
    const report: BackfillReport = {
      v: 1,
      id: 'job-1',
      symbol: BTC,
      status: 'storing',
      reporter: 'dynamic-consumer',
      at: m(62),
      progress: { done: 3, total: 60 },
    };
    expect(decodeBackfillReport(encodeBackfillMessage(report))).toEqual({
      ok: true,
      value: report,
    });
    const candle = candleRecord(BTC, {
      time: m(1),
      open: 2,
      high: 3,
      low: 1,
      close: 2.5,
      volume: 7,
    });
    expect(decodeBackfillRecord(encodeBackfillMessage(candle))).toEqual({
      ok: true,
      value: candle,
    });
    const end = {
      v: 1,
      type: 'end',
      id: 'job-1',
      candles: 60,
      unavailable: [{ from: m(0), to: m(1), reason: 'beyond the source history' }],
    } as BackfillRecord;
    expect(decodeBackfillRecord(encodeBackfillMessage(end))).toEqual({ ok: true, value: end });
  });

  it('refuses what is malformed, with the reason', () => {
    expect(decodeBackfillRequest('{"v":1}')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('backfill request'),
    });
    expect(
      decodeBackfillRequest(
        encodeBackfillMessage({ v: 1, id: 'a', symbol: BTC, from: m(5), to: m(5), requestedAt: 0 }),
      ),
    ).toMatchObject({ ok: false, reason: expect.stringContaining('to must be after from') });
    expect(
      decodeBackfillRequest(
        encodeBackfillMessage({
          v: 1,
          id: 'a b',
          symbol: BTC,
          from: m(0),
          to: m(5),
          requestedAt: 0,
        }),
      ),
    ).toMatchObject({ ok: false });
    expect(decodeBackfillRecord('{"v":1,"type":"tick"}')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('candle, end or failed'),
    });
    expect(
      decodeBackfillRecord(
        encodeBackfillMessage(
          candleRecord(BTC, { time: m(0), open: 5, high: 3, low: 1, close: 2, volume: 1 }),
        ),
      ),
    ).toMatchObject({ ok: false, reason: expect.stringContaining('candle') });
    expect(decodeBackfillRecord('not json')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('invalid JSON'),
    });
  });
});

describe('missingRanges', () => {
  const now = m(1_000) + 30_000;
  it('leaves the time after a recent newest minute to the live stream, and never the current minute', () => {
    expect(missingRanges({ from: m(0), to: now }, [{ from: m(500), to: m(995) }], now)).toEqual([
      { from: m(0), to: m(500) },
    ]);
  });
  it('asks for the tail when the newest stored minute is old (the platform was off)', () => {
    expect(missingRanges({ from: m(0), to: now }, [{ from: m(0), to: m(900) }], now)).toEqual([
      { from: m(900), to: m(1_000) },
    ]);
  });
  it('asks for everything on an empty database, minute-aligned, and nothing for the future', () => {
    expect(missingRanges({ from: m(10) + 5, to: m(20) + 5 }, [], now)).toEqual([
      { from: m(10), to: m(21) },
    ]);
    expect(missingRanges({ from: m(2_000), to: m(3_000) }, [], now)).toEqual([]);
  });
});
