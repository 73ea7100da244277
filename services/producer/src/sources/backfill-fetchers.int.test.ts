/**
 * The CryptoCompare backfill fetcher against the fake over real HTTP: minutes where histominute
 * keeps them, hours where it does not, days where histohour does not either, and no coarser
 * candles in place of a transient failure (the minutes must stay missing, to be fetched later).
 */
import type { SpanBar, TimeRange } from '@candlestream/core';
import {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  SECOND_MS,
  SimulatedClock,
  parseSymbol,
} from '@candlestream/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CryptoCompareFetcherOptions } from './backfill-fetchers.js';
import {
  cryptoCompareFetcher,
  STORED_DAYS_REASON,
  STORED_HOURS_REASON,
} from './backfill-fetchers.js';
import type { FakeCryptoCompare } from './cryptocompare-fake.js';
import { BEYOND_MINUTE_HISTORY_MESSAGE, startFakeCryptoCompare } from './cryptocompare-fake.js';
import type { CcCandle } from './cryptocompare-rest.js';
import { HISTO_MAX_LIMIT } from './cryptocompare-rest.js';

const BTC = parseSymbol('BTC-USD');
const API_KEY = 'test-api-key';
/** 2024-01-01T00:00:00Z. */
const BASE_MS = Date.UTC(2024, 0, 1);
const FAST_RETRY = { backoff: { initialDelayMs: 1, maxDelayMs: 1, jitter: 0 }, maxAttempts: 2 };

let fake: FakeCryptoCompare;

beforeEach(async () => {
  fake = await startFakeCryptoCompare({ apiKey: API_KEY, heartbeatIntervalMs: 0 });
});

afterEach(async () => {
  await fake.close();
});

/** Bars of `stepMs` over [fromMs, toMs), prices apart per resolution so a test can tell them apart. */
function bars(fromMs: number, toMs: number, stepMs: number, level: number): CcCandle[] {
  const out: CcCandle[] = [];
  for (let t = fromMs, k = 0; t < toMs; t += stepMs, k++) {
    const open = level + (k % 89);
    out.push({
      time: t / SECOND_MS,
      open,
      high: open + 7,
      low: open - 3,
      close: open + (k % 2 === 0 ? 2 : -1),
      volumefrom: 1 + (k % 11) / 4,
      volumeto: open,
    });
  }
  return out;
}

const asSpanBar = (c: CcCandle, span?: '1h' | '1d'): SpanBar => ({
  time: c.time * SECOND_MS,
  open: c.open,
  high: c.high,
  low: c.low,
  close: c.close,
  volume: c.volumefrom,
  ...(span ? { span } : {}),
});

const within = (cs: CcCandle[], r: TimeRange): CcCandle[] =>
  cs.filter((c) => c.time * SECOND_MS >= r.from && c.time * SECOND_MS < r.to);

const floorHour = (t: number): number => Math.floor(t / HOUR_MS) * HOUR_MS;
const ceilHour = (t: number): number => Math.ceil(t / HOUR_MS) * HOUR_MS;

// A month of each resolution, on the fake's Kraken BTC-USD.
const MINUTES = bars(BASE_MS, BASE_MS + 30 * DAY_MS, MINUTE_MS, 40_000);
const HOURS = bars(BASE_MS, BASE_MS + 30 * DAY_MS, HOUR_MS, 41_000);
const DAYS = bars(BASE_MS, BASE_MS + 30 * DAY_MS, DAY_MS, 42_000);

function fetcher(extra: Partial<CryptoCompareFetcherOptions> = {}) {
  fake.setMinutes('Kraken', 'BTC', 'USD', MINUTES);
  fake.setCandles('hour', 'Kraken', 'BTC', 'USD', HOURS);
  fake.setCandles('day', 'Kraken', 'BTC', 'USD', DAYS);
  return cryptoCompareFetcher({
    apiKey: API_KEY,
    restUrl: fake.restUrl,
    exchange: 'Kraken',
    retry: FAST_RETRY,
    ...extra,
  });
}

const paths = (): string[] => fake.restRequests.map((r) => r.path.replace('/data/v2/', ''));

describe('CryptoCompare backfill fetcher', () => {
  it('a piece entirely beyond the minute history gets the hours around it, reported as stored 1h', async () => {
    const f = fetcher();
    fake.setMinuteHistoryStart((BASE_MS + 20 * DAY_MS) / SECOND_MS);
    // A 2,000-minute piece, starting and ending mid-hour.
    const piece = { from: BASE_MS + DAY_MS + 10 * MINUTE_MS, to: 0 };
    piece.to = piece.from + HISTO_MAX_LIMIT * MINUTE_MS;
    const fetched = await f.fetch(BTC, piece, new AbortController().signal);
    const hourWindow = { from: floorHour(piece.from), to: ceilHour(piece.to) };
    expect(fetched.candles).toEqual(within(HOURS, hourWindow).map((c) => asSpanBar(c, '1h')));
    expect(fetched.candles).toHaveLength(34);
    expect(fetched.unavailable).toEqual([
      { from: piece.from, to: hourWindow.to, reason: STORED_HOURS_REASON, stored: '1h' },
    ]);
    // The refusal is not retried; one histohour page holds the 34 hours.
    expect(paths()).toEqual(['histominute', 'histohour']);
  });

  it('a piece straddling the minute-history start gets hours before it, the seam hour as an hour, minutes after', async () => {
    const f = fetcher();
    const start = BASE_MS + 2 * DAY_MS + 30 * MINUTE_MS; // mid-hour
    fake.setMinuteHistoryStart(start / SECOND_MS);
    const piece = { from: start - 600 * MINUTE_MS, to: start + 600 * MINUTE_MS };
    const fetched = await f.fetch(BTC, piece, new AbortController().signal);
    const hours = within(HOURS, { from: floorHour(piece.from), to: ceilHour(start) });
    const minutes = within(MINUTES, { from: start, to: piece.to });
    // Ascending by time: the seam hour (00:00 of day 2) comes before the minutes from 00:30.
    expect(fetched.candles).toEqual(
      [...hours.map((c) => asSpanBar(c, '1h')), ...minutes.map((c) => asSpanBar(c))].sort(
        (a, b) => a.time - b.time,
      ),
    );
    expect(fetched.candles.filter((c) => c.span === '1h').at(-1)!.time).toBe(floorHour(start));
    expect(fetched.candles.filter((c) => c.span === undefined)[0]!.time).toBe(start);
    // The seam hour's minutes after the history start are not stored as minutes (the hour wins).
    expect(fetched.unavailable).toEqual([
      { from: piece.from, to: ceilHour(start), reason: STORED_HOURS_REASON, stored: '1h' },
    ]);
  });

  it('hours beyond the hour history fall back to days; the day reaching into the hours wins', async () => {
    const f = fetcher();
    fake.setMinuteHistoryStart((BASE_MS + 25 * DAY_MS) / SECOND_MS);
    const hourStart = BASE_MS + 10 * DAY_MS + HOUR_MS;
    fake.setHourHistoryStart(hourStart / SECOND_MS);
    // 9d 20:00 to 11d 05:20: hours from 10d 01:00, days 9 and 10 before.
    const piece = { from: BASE_MS + 9 * DAY_MS + 20 * HOUR_MS, to: 0 };
    piece.to = piece.from + HISTO_MAX_LIMIT * MINUTE_MS;
    const fetched = await f.fetch(BTC, piece, new AbortController().signal);
    const days = within(DAYS, { from: BASE_MS + 9 * DAY_MS, to: BASE_MS + 11 * DAY_MS });
    const hours = within(HOURS, { from: hourStart, to: ceilHour(piece.to) });
    expect(days).toHaveLength(2);
    expect(fetched.candles).toEqual(
      [...days.map((c) => asSpanBar(c, '1d')), ...hours.map((c) => asSpanBar(c, '1h'))].sort(
        (a, b) => a.time - b.time,
      ),
    );
    expect(fetched.unavailable).toEqual([
      {
        from: piece.from,
        to: BASE_MS + 11 * DAY_MS,
        reason: STORED_DAYS_REASON,
        stored: '1d',
      },
      {
        from: BASE_MS + 11 * DAY_MS,
        to: ceilHour(piece.to),
        reason: STORED_HOURS_REASON,
        stored: '1h',
      },
    ]);
    expect(paths()).toEqual(['histominute', 'histohour', 'histohour', 'histoday']);
  });

  it('a lasting rate limit does not fall back: the minutes stay missing, nothing stored', async () => {
    const f = fetcher();
    fake.setMinuteHistoryStart((BASE_MS + 20 * DAY_MS) / SECOND_MS);
    fake.failNextRest('rate-limit', 10);
    const piece = { from: BASE_MS + DAY_MS, to: BASE_MS + DAY_MS + 120 * MINUTE_MS };
    const fetched = await f.fetch(BTC, piece, new AbortController().signal);
    expect(fetched.candles).toEqual([]);
    expect(fetched.unavailable).toHaveLength(1);
    expect(fetched.unavailable[0]).toMatchObject({ from: piece.from, to: piece.to });
    expect(fetched.unavailable[0]!.reason).toMatch(/rate limit/);
    expect(fetched.unavailable[0]).not.toHaveProperty('stored');
    expect(paths()).toEqual(['histominute', 'histominute']);
  });

  it('hours the exchange does not list either: nothing stored, the reason names both refusals', async () => {
    fake.setMinutes('Kraken', 'BTC', 'USD', MINUTES);
    fake.setMinuteHistoryStart((BASE_MS + 20 * DAY_MS) / SECOND_MS);
    const f = cryptoCompareFetcher({ apiKey: API_KEY, restUrl: fake.restUrl, exchange: 'Kraken' });
    const piece = { from: BASE_MS + DAY_MS + 10 * MINUTE_MS, to: BASE_MS + 2 * DAY_MS };
    const fetched = await f.fetch(BTC, piece, new AbortController().signal);
    expect(fetched.candles).toEqual([]);
    expect(fetched.unavailable).toHaveLength(1);
    expect(fetched.unavailable[0]).toEqual({ ...piece, reason: expect.any(String) as string });
    expect(fetched.unavailable[0]!.reason).toContain(BEYOND_MINUTE_HISTORY_MESSAGE);
    expect(fetched.unavailable[0]!.reason).toContain('histohour error');
    // Not beyond the hour history: no days asked.
    expect(paths()).toEqual(['histominute', 'histohour']);
  });

  it('no hour that is still forming: the part in it is reported without stored', async () => {
    const pieceTo = BASE_MS + DAY_MS + 40 * MINUTE_MS;
    // Now is 10 minutes after the piece: its last hour ends 10 minutes from now.
    const f = fetcher({ clock: new SimulatedClock(pieceTo + 10 * MINUTE_MS) });
    fake.setMinuteHistoryStart((BASE_MS + 20 * DAY_MS) / SECOND_MS);
    const piece = { from: pieceTo - 300 * MINUTE_MS, to: pieceTo };
    const fetched = await f.fetch(BTC, piece, new AbortController().signal);
    expect(fetched.candles).toEqual(
      within(HOURS, { from: floorHour(piece.from), to: floorHour(pieceTo) }).map((c) =>
        asSpanBar(c, '1h'),
      ),
    );
    expect(fetched.unavailable).toEqual([
      { from: piece.from, to: floorHour(pieceTo), reason: STORED_HOURS_REASON, stored: '1h' },
      {
        from: floorHour(pieceTo),
        to: pieceTo,
        reason: expect.stringContaining(BEYOND_MINUTE_HISTORY_MESSAGE) as string,
      },
    ]);
  });
});
