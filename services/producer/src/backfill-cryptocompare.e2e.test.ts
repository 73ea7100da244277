/**
 * A backfill from CryptoCompare through the whole platform, every service a process, from an
 * empty database: the producer reads the vendor's REST history from the fake (which answers as
 * the real service does), the coordinator drives the job, the dynamic consumer stores it. The
 * history has a minute without trading (an all-zero row) in the middle, the first page is refused
 * with HTTP 429, and the request reaches before the ~7-day minute history, whose refusal must
 * keep the pages already fetched and be reported as what the source could not provide. Before
 * the minutes the vendor keeps only hours, and before a point only days: a year of 1d bars and a
 * month of 1h bars asked for on /ohlcv arrive from those, and the answer says so.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type { Bar, MarketSymbol } from '@candlestream/core';
import { DAY_MS, diffBars, HOUR_MS, MINUTE_MS, rollupBars } from '@candlestream/core';
import { migrate, Repository } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess, TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, spawnService, waitUntil } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CcCandle, CcMinuteCandle } from './sources/cryptocompare-rest.js';
import type { FakeCryptoCompare } from './sources/cryptocompare-fake.js';
import { startFakeCryptoCompare } from './sources/cryptocompare-fake.js';

const services = needServices(['postgres']);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const main = (service: string): string => join(ROOT, 'services', service, 'src', 'main.ts');
const logger = silentLogger();
const API_KEY = 'e2e-test-api-key';
const BTC = 'BTC-USD' as MarketSymbol;
const MINUTES = 2 * 24 * 60;

describe.skipIf(services.skip)('a CryptoCompare backfill across the platform', () => {
  let broker: RunningBroker;
  let fake: FakeCryptoCompare;
  let dataDir: string;
  let db: TestDatabase;
  let repository: Repository;
  let url: string;
  const processes: ServiceProcess[] = [];
  // Two days of the vendor's minutes, ending about three hours ago (on the hour, so the seam with
  // the hours before is whole); the minute history starts there.
  const end = Math.floor((Date.now() - 3 * HOUR_MS) / HOUR_MS) * HOUR_MS;
  const historyStart = end - MINUTES * MINUTE_MS;
  const quiet = historyStart + 1_000 * MINUTE_MS; // the all-zero row, mid-series
  const candles: CcMinuteCandle[] = Array.from({ length: MINUTES }, (_, i) => {
    const time = (historyStart + i * MINUTE_MS) / 1_000;
    if (time * 1_000 === quiet) {
      return { time, open: 0, high: 0, low: 0, close: 0, volumefrom: 0, volumeto: 0 };
    }
    const open = 30_000 + (i % 97) * 3;
    return {
      time,
      open,
      high: open + 12.5,
      low: open - 7.25,
      close: open + (i % 5) - 2,
      volumefrom: 0.5 + (i % 13) / 10,
      volumeto: (0.5 + (i % 13) / 10) * open,
    };
  });

  // Older history: the vendor's hours reach back to hourHistoryStart, its days a year and more.
  const yearEnd = Math.floor((historyStart - DAY_MS) / DAY_MS) * DAY_MS - DAY_MS;
  const yearStart = yearEnd - 365 * DAY_MS;
  const hourHistoryStart = yearEnd - 40 * DAY_MS;
  const series = (from: number, to: number, step: number, seed: number): CcCandle[] =>
    Array.from({ length: (to - from) / step }, (_, i) => {
      const open = 20_000 + seed * 1_000 + (i % 89) * 7;
      return {
        time: (from + i * step) / 1_000,
        open,
        high: open + 40 + (i % 7),
        low: open - 30 - (i % 5),
        close: open + (i % 11) - 5,
        volumefrom: 10 + (i % 17),
        volumeto: (10 + (i % 17)) * open,
      };
    });
  const hours = series(hourHistoryStart, end, HOUR_MS, 1);
  const days = series(yearStart - 10 * DAY_MS, end - DAY_MS, DAY_MS, 2);
  const toBar = (c: CcCandle): Bar => ({
    time: c.time * 1_000,
    open: c.open,
    high: c.high,
    low: c.low,
    close: c.close,
    volume: c.volumefrom,
  });
  const within = (cs: CcCandle[], from: number, to: number): Bar[] =>
    cs.filter((c) => c.time * 1_000 >= from && c.time * 1_000 < to).map(toBar);

  beforeAll(async () => {
    fake = await startFakeCryptoCompare({ apiKey: API_KEY, heartbeatIntervalMs: 0 });
    fake.setMinutes('Coinbase', 'BTC', 'USD', candles);
    fake.setMinuteHistoryStart(historyStart / 1_000);
    fake.setCandles('hour', 'Coinbase', 'BTC', 'USD', hours);
    fake.setHourHistoryStart(hourHistoryStart / 1_000);
    fake.setCandles('day', 'Coinbase', 'BTC', 'USD', days);
    dataDir = await mkdtemp(join(tmpdir(), 'cs-cc-backfill-'));
    broker = await startBroker({ port: 0, dataDir });
    db = await createTestDatabase(services.get('postgres').url, 'cc_backfill');
    await migrate({ url: db.url }, { logger });
    repository = new Repository({ url: db.url, logger });
    const env = {
      KAFKA_BROKERS: broker.brokers,
      DATABASE_URL: db.url,
      SYMBOLS: 'BTC-USD',
      HEALTH_PORT: '0',
      PORT: '0',
      CRYPTOCOMPARE_API_KEY: API_KEY,
      CRYPTOCOMPARE_REST_URL: fake.restUrl,
      CRYPTOCOMPARE_WS_URL: fake.wsUrl,
      RATE_LIMIT_PER_MINUTE: '1000000',
      LOG_LEVEL: 'info',
    };
    const start = (service: string): ServiceProcess => {
      const p = spawnService(main(service), env);
      processes.push(p);
      return p;
    };
    const healthy = (p: ServiceProcess) =>
      p.waitForLine((l) => typeof l['to'] === 'string' && /healthy/.test(l['to']), 60_000);
    await healthy(start('fixed-consumer'));
    await healthy(start('dynamic-consumer'));
    await healthy(start('coordinator'));
    await healthy(start('producer'));
    const datastore = start('datastore');
    const listening = await datastore.waitForLine((l) => l['msg'] === 'listening', 60_000);
    url = `http://127.0.0.1:${String(listening['port'])}`;
  }, 120_000);

  afterAll(async () => {
    for (const p of processes) await p.kill();
    await repository?.close();
    await broker?.stop();
    await fake?.close();
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('stores the vendor’s minutes (a quiet minute skipped, a 429 retried) and says what lies beyond its history', async () => {
    const from = historyStart - DAY_MS; // a day before the vendor's minute history
    fake.failNextRest('rate-limit', 1);
    const posted = await fetch(`${url}/backfills`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        symbol: BTC,
        from: new Date(from).toISOString(),
        to: new Date(end).toISOString(),
      }),
    });
    expect(posted.status).toBe(202);
    const { id } = (await posted.json()) as { id: string };
    let job:
      | {
          status: string;
          unavailable: {
            from: string | number;
            to: string | number;
            reason: string;
            stored?: string;
          }[];
        }
      | undefined;
    await waitUntil(
      'the job done',
      async () => {
        const response = await fetch(`${url}/backfills/${id}`);
        job = (await response.json()) as typeof job;
        if (job?.status === 'failed') throw new Error(JSON.stringify(job));
        return job?.status === 'done';
      },
      120_000,
    );
    // Every page was asked with tryConversion=false, and the 429 was retried.
    expect(fake.restRequests.length).toBeGreaterThan(2);
    expect(fake.restRequests.every((r) => r.query['tryConversion'] === 'false')).toBe(true);

    const stored = await repository.readBars(BTC, '1m', from, end);
    const expected: Bar[] = candles
      .filter((c) => c.time * 1_000 !== quiet)
      .map((c) => ({
        time: c.time * 1_000,
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        volume: c.volumefrom,
      }));
    // Before, paging stopped at the all-zero row: only the minutes after it came back.
    expect(stored.length).toBe(MINUTES - 1);
    expect(stored).toEqual(expected);
    // The part before the vendor's minute history is named, with its reason.
    expect(job!.unavailable.length).toBeGreaterThan(0);
    const gap = job!.unavailable.map((u) => ({
      from: new Date(u.from).getTime(),
      to: new Date(u.to).getTime(),
    }));
    expect(Math.min(...gap.map((g) => g.from))).toBeLessThanOrEqual(from);
    expect(Math.max(...gap.map((g) => g.to))).toBeLessThanOrEqual(historyStart + MINUTE_MS);
    // There the vendor has hours: they were stored, and the entry says so.
    expect(job!.unavailable.every((u) => u.stored === '1h')).toBe(true);
    // Above 1m the database sums minute volumes in floating point (docs/STORAGE.md).
    const hourBars = [...within(hours, from, historyStart), ...rollupBars(expected, '1m', '1h')];
    expect(
      diffBars(hourBars, await repository.readBars(BTC, '1h', from, end), { volumeRelTol: 1e-9 }),
    ).toEqual([]);
  }, 180_000);

  it('a year of 1d and a month of 1h on /ohlcv come from the vendor’s days and hours', async () => {
    type Answer = {
      bars: {
        time: string;
        open: number;
        high: number;
        low: number;
        close: number;
        volume: number;
      }[];
      backfill?: { id: string; status: string };
    };
    const ohlcv = async (interval: string, from: number, to: number, wait?: number) => {
      const query = new URLSearchParams({
        symbol: BTC,
        interval,
        startDate: new Date(from).toISOString(),
        endDate: new Date(to).toISOString(),
        ...(wait ? { wait: String(wait) } : {}),
      });
      const response = await fetch(`${url}/ohlcv?${query.toString()}`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as Answer;
      return {
        backfill: body.backfill,
        bars: body.bars.map(({ time, ...b }) => ({ time: Date.parse(time), ...b })),
      };
    };
    const first = await ohlcv('1d', yearStart, yearEnd, 30_000);
    const id = first.backfill?.id;
    expect(id).toBeDefined();
    let job: { status: string; unavailable: { stored?: string }[] } | undefined;
    await waitUntil(
      'the year stored',
      async () => {
        job = (await (await fetch(`${url}/backfills/${id!}`)).json()) as typeof job;
        if (job?.status === 'failed') throw new Error(JSON.stringify(job));
        return job?.status === 'done';
      },
      180_000,
    );
    // Days where the vendor has only days, the hours' days after its hour history starts.
    const year = await ohlcv('1d', yearStart, yearEnd);
    expect(year.backfill).toBeUndefined();
    expect(year.bars).toHaveLength(365);
    expect(year.bars).toEqual([
      ...within(days, yearStart, hourHistoryStart),
      ...rollupBars(within(hours, hourHistoryStart, yearEnd), '1h', '1d'),
    ]);
    const monthStart = yearEnd - 30 * DAY_MS;
    expect((await ohlcv('1h', monthStart, yearEnd)).bars).toEqual(
      within(hours, monthStart, yearEnd),
    );
    // No minutes there, and the job says what was stored instead.
    expect((await ohlcv('1m', yearEnd - DAY_MS, yearEnd)).bars).toEqual([]);
    expect(new Set(job!.unavailable.map((u) => u.stored))).toEqual(new Set(['1d', '1h']));
  }, 240_000);
});
