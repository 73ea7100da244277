import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar, Interval, MarketSymbol, Tick } from '@candlestream/core';
import {
  aggregateTicks,
  checkSeries,
  diffBars,
  INTERVALS,
  rollupBars,
  SimulatedClock,
} from '@candlestream/core';
import { makeTick, randomTicks, seededRandom, shuffled } from '@candlestream/core/testing';
import { silentLogger } from '@candlestream/logger';
import type { ServiceKind } from '@candlestream/testkit';
import { createTestSchema, needServices } from '@candlestream/testkit';
import { QueryTypes } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from './connection.js';
import { migrate, MIGRATIONS_DIR } from './migrate.js';
import { Repository } from './repository.js';

const required = needServices(['postgres', 'pglite']);
const optional = needServices(['timescaledb'], { optional: true });

interface BackendCase {
  kind: ServiceKind;
  expected: 'postgres' | 'timescaledb';
  poolMax: number;
  skip: boolean;
}
const CASES: BackendCase[] = [
  { kind: 'postgres', expected: 'postgres', poolMax: 4, skip: required.skip },
  { kind: 'pglite', expected: 'timescaledb', poolMax: 1, skip: required.skip },
  { kind: 'timescaledb', expected: 'timescaledb', poolMax: 4, skip: optional.skip },
];

const BTC = 'BTC-USD' as MarketSymbol;
const ETH = 'ETH-USD' as MarketSymbol;
const DAY = 86_400_000;
const START = Date.UTC(2024, 11, 30, 22); // two days that cross a year and a Monday
/** SQL sums float8 in its own order; the core rounds the exact sum. OHLC is compared exactly. */
const VOLUME_TOLERANCE = { volumeRelTol: 1e-9 };
const FAR_FUTURE = Date.UTC(2100, 0, 1);

function expectSameBars(expected: Bar[], actual: Bar[], label: string): void {
  expect(diffBars(expected, actual, VOLUME_TOLERANCE), label).toEqual([]);
}

function oracle(ticks: Tick[], symbol: MarketSymbol, interval: Interval): Bar[] {
  return aggregateTicks(ticks, interval).get(symbol) ?? [];
}

/**
 * Runs every background job TimescaleDB has for this schema's tables and aggregates
 * (compression, refresh policies), as its workers would on a real server; PGlite has none.
 */
async function runPolicyJobs(target: { url: string; schema: string }): Promise<number> {
  const client = await connect(target);
  try {
    const jobs = await client.query<{ job_id: number }>(
      `SELECT j.job_id FROM timescaledb_information.jobs j
       WHERE j.hypertable_schema = $1
          OR (j.hypertable_schema, j.hypertable_name) IN (
            SELECT materialization_hypertable_schema, materialization_hypertable_name
            FROM timescaledb_information.continuous_aggregates WHERE view_schema = $1)
       ORDER BY j.job_id`,
      [target.schema],
    );
    for (const { job_id } of jobs.rows) await client.query(`CALL run_job(${job_id})`);
    return jobs.rows.length;
  } finally {
    await client.end();
  }
}

/** 1m volumes must be the correctly rounded sum of the minute's sizes, to the bit. */
function expectExactMinutes(
  ticks: Tick[],
  symbol: MarketSymbol,
  actual: Bar[],
  label: string,
): void {
  expect(diffBars(oracle(ticks, symbol, '1m'), actual), label).toEqual([]);
}

describe.each(CASES)('storage on $kind', ({ kind, expected, poolMax, skip }) => {
  let url: string;
  let drop: () => Promise<void>;
  let target: { url: string; schema: string };
  let repo: Repository;

  beforeAll(async () => {
    if (skip) return;
    url =
      kind === 'timescaledb'
        ? optional.get('timescaledb').url
        : required.get(kind as 'postgres' | 'pglite').url;
    const schema = await createTestSchema(url, `repo_${kind}`);
    drop = () => schema.drop();
    target = { url, schema: schema.schema };
  });
  afterAll(async () => {
    await repo?.close();
    await drop?.();
  });

  it.skipIf(skip)('applies every migration to an empty database, once', async () => {
    const first = await migrate(target, { logger: silentLogger() });
    expect(first.backend).toBe(expected);
    expect(first.applied).toEqual([
      '0001_ticks',
      '0002_bars_1m',
      '0003_hypertables',
      '0004_ohlcv',
      '0005_minute_state',
      '0006_keep_raw_trades', // recorded on plain PostgreSQL too, with nothing to run
      '0007_backfill_jobs',
      '0008_coarse_candles',
      '0009_hour_day_series', // recorded on TimescaleDB too, with nothing to run
    ]);
    const again = await migrate(target, { logger: silentLogger() });
    expect(again.applied).toEqual([]);
    const client = await connect(target);
    try {
      const relations = await client.query<{ name: string }>(
        `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1
         UNION SELECT matviewname FROM pg_matviews WHERE schemaname = $1
         UNION SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = $1`.replace(
          expected === 'postgres'
            ? /\s*UNION SELECT view_name FROM timescaledb_information[^$]*\$1/
            : /$^/,
          '',
        ),
        [target.schema],
      );
      const names = relations.rows.map((r) => r.name);
      for (const relation of [
        'ticks',
        'bars_1m',
        'ohlcv_1m',
        'ohlcv_5m',
        'ohlcv_15m',
        'ohlcv_1h',
        'ohlcv_4h',
        'ohlcv_1d',
      ]) {
        expect(names, relation).toContain(relation);
      }
    } finally {
      await client.end();
    }
    // "Now" is the end of the test's trades, so the newest buckets are still forming.
    repo = new Repository({
      ...target,
      logger: silentLogger(),
      poolMax,
      clock: new SimulatedClock(START + 2 * DAY - 1),
    });
    expect(await repo.backend()).toBe(expected);
  });

  it.skipIf(skip)('refuses a migration that changed after it was applied', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cs-migrations-'));
    try {
      await cp(MIGRATIONS_DIR, dir, { recursive: true });
      const file = join(dir, '0001_ticks.sql');
      await writeFile(file, `${await readFile(file, 'utf8')}\n-- edited after shipping\n`);
      await expect(migrate(target, { dir, logger: silentLogger() })).rejects.toThrow(
        /migration 0001_ticks changed after it was applied/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(skip)(
    'upgrades a database with history through migration 0008 with the same bars at every interval',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'cs-migrations-0007-'));
      const schema = await createTestSchema(url, `upgrade_${kind}`);
      const old = { url, schema: schema.schema };
      const repository = new Repository({ ...old, logger: silentLogger(), poolMax });
      try {
        await cp(MIGRATIONS_DIR, dir, { recursive: true });
        // Up to 0007 first, then to 0008 alone; later migrations have tests of their own.
        const later = (await readdir(dir)).filter((file) => file.slice(0, 4) > '0008');
        for (const file of later) await rm(join(dir, file));
        await rm(join(dir, '0008_coarse_candles.timescaledb.sql'));
        await rm(join(dir, '0008_coarse_candles.postgres.sql'));
        await migrate(old, { dir, logger: silentLogger() });
        const history = randomTicks({
          seed: 8,
          count: 1_500,
          from: Date.UTC(2024, 2, 1),
          spanMs: 3 * DAY,
          symbols: [BTC],
          tsStepMs: 60_000,
        });
        // Written as the 0007 schema has it (this code writes span_min, which it lacks).
        const minutes = oracle(history, BTC, '1m');
        const query = <T extends object>(sql: string, bind: unknown[]): Promise<T[]> =>
          repository.sequelize.query<T>(sql, { bind, type: QueryTypes.SELECT });
        const relations = ['ohlcv_1m', 'ohlcv_5m', 'ohlcv_15m', 'ohlcv_1h', 'ohlcv_4h', 'ohlcv_1d'];
        const readAll = async (): Promise<Map<string, Bar[]>> => {
          const out = new Map<string, Bar[]>();
          for (const relation of relations) {
            const rows = await query<Bar>(
              `SELECT (extract(epoch FROM bucket) * 1000)::float8 AS time, open, high, low, close, volume
               FROM ${relation} WHERE symbol = $1 ORDER BY bucket`,
              [BTC],
            );
            out.set(relation, rows);
          }
          return out;
        };
        // 300 rows a statement: pglite-socket traps on a protocol message split across chunks.
        for (let i = 0; i < minutes.length; i += 300) {
          const part = minutes.slice(i, i + 300);
          await query(
            `INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, origin)
           SELECT $1, to_timestamp(t / 1000.0), o, h, l, c, v, 1, 'ticks'
           FROM unnest($2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[])
             AS u(t, o, h, l, c, v)`,
            [
              BTC,
              part.map((b) => b.time),
              part.map((b) => b.open),
              part.map((b) => b.high),
              part.map((b) => b.low),
              part.map((b) => b.close),
              part.map((b) => b.volume),
            ],
          );
        }
        await repository.refreshAggregates(0, Date.now());
        const before = await readAll();
        expect(before.get('ohlcv_1d')!.length).toBeGreaterThan(2);
        for (const file of [
          '0008_coarse_candles.timescaledb.sql',
          '0008_coarse_candles.postgres.sql',
        ])
          await cp(join(MIGRATIONS_DIR, file), join(dir, file));
        expect((await migrate(old, { dir, logger: silentLogger() })).applied).toEqual([
          '0008_coarse_candles',
        ]);
        const after = await readAll();
        for (const relation of relations) {
          expectSameBars(before.get(relation)!, after.get(relation)!, `${relation} upgraded`);
        }
        // The repository reads the newest schema (on plain PostgreSQL, 0009's hour and day tables).
        await migrate(old, { logger: silentLogger() });
        for (const interval of ['1m', '1h', '1d'] as const) {
          expectSameBars(
            oracle(history, BTC, interval),
            await repository.readBars(BTC, interval, 0, FAR_FUTURE),
            `${interval} read after the upgrade`,
          );
        }
      } finally {
        await repository.close();
        await schema.drop();
        await rm(dir, { recursive: true, force: true });
      }
    },
  );

  const ticks = randomTicks({
    seed: 404,
    count: 4_000,
    from: START,
    spanMs: 2 * DAY,
    symbols: [BTC, ETH],
    tsStepMs: 1_000, // same-second trades: ties broken by trade id
  });

  it.skipIf(skip)(
    'stores trades in shuffled, overlapping batches and answers as the core aggregator, at every interval',
    async () => {
      const random = seededRandom(7);
      const arrival = shuffled(ticks, random);
      let inserted = 0;
      for (let i = 0; i < arrival.length; i += 500) {
        // Each batch re-sends part of the previous one, as a consumer does after a crash.
        const batch = arrival.slice(Math.max(0, i - 100), i + 500);
        inserted += (await repo.insertTrades(batch)).inserted;
      }
      expect(inserted).toBe(ticks.length);
      for (const symbol of [BTC, ETH]) {
        const minutes = await repo.readBars(symbol, '1m', START - DAY, START + 3 * DAY);
        expectExactMinutes(ticks, symbol, minutes, `${symbol} 1m volumes exact`);
      }
      for (const interval of INTERVALS) {
        for (const symbol of [BTC, ETH]) {
          const bars = await repo.readBars(symbol, interval, START - DAY, START + 3 * DAY);
          expectSameBars(
            oracle(ticks, symbol, interval),
            bars,
            `${symbol} ${interval} (real-time)`,
          );
          expect(checkSeries(bars, interval, { gaps: 'allow' }).ok).toBe(true);
        }
      }
      await repo.refreshAggregates(START - DAY, START + 3 * DAY);
      for (const interval of INTERVALS) {
        const bars = await repo.readBars(BTC, interval, START - DAY, START + 3 * DAY);
        expectSameBars(oracle(ticks, BTC, interval), bars, `${interval} (materialized)`);
      }
    },
  );

  it.skipIf(skip)(
    'regression: old trades stay right after every policy job ran (compression, refreshes)',
    async () => {
      // The test's trades are from 2024: on TimescaleDB the jobs compress them, and a retention
      // policy (dropped in migration 0006) used to delete them here.
      const jobs = await runPolicyJobs(target).catch((err: Error) => {
        if (expected === 'postgres') return 0;
        throw err;
      });
      if (expected === 'timescaledb') expect(jobs).toBeGreaterThanOrEqual(6);
      for (const interval of INTERVALS) {
        const bars = await repo.readBars(BTC, interval, START - DAY, START + 3 * DAY);
        expectSameBars(oracle(ticks, BTC, interval), bars, `${interval} after the jobs`);
      }
      expect(await repo.readTrades(BTC, START - DAY, START + 3 * DAY)).toHaveLength(
        ticks.filter((t) => t.symbol === BTC).length,
      );
    },
  );

  it.skipIf(skip)('changes nothing when the same trades are written again', async () => {
    const before = await repo.readBars(BTC, '1h', START, START + 2 * DAY);
    const minutesBefore = await repo.readBars(BTC, '1m', START - DAY, START + 3 * DAY);
    const again = await repo.insertTrades(ticks.slice(0, 1_000));
    expect(again).toEqual({ inserted: 0, touched: [] });
    expect(await repo.readBars(BTC, '1h', START, START + 2 * DAY)).toEqual(before);
    // Rebuilding the minutes in bulk from the stored trades lands on the same bars.
    await repo.rebuildMinutes(BTC, START - DAY, START + 3 * DAY);
    await repo.refreshAggregates(START - DAY, START + 3 * DAY);
    expect(await repo.readBars(BTC, '1m', START - DAY, START + 3 * DAY)).toEqual(minutesBefore);
    expectSameBars(
      before,
      await repo.readBars(BTC, '1h', START, START + 2 * DAY),
      '1h after rebuild',
    );
  });

  it.skipIf(skip)('folds late trades into closed, materialized buckets', async () => {
    const late = [
      makeTick({ symbol: BTC, ts: START + 5 * 60_000 + 1, price: 1, size: 3, id: 'late-low' }),
      makeTick({
        symbol: BTC,
        ts: START + 25 * 3_600_000,
        price: 1_000_000,
        size: 2,
        id: 'late-high',
      }),
    ];
    const result = await repo.insertTrades(late);
    expect(result.inserted).toBe(2);
    // No refresh here: the writer brings the aggregates over what it changed up to date.
    const all = [...ticks, ...late];
    for (const interval of ['1m', '5m', '1h', '4h', '1d', '1w'] as const) {
      const bars = await repo.readBars(BTC, interval, START - DAY, START + 3 * DAY);
      expectSameBars(oracle(all, BTC, interval), bars, `${interval} after late trades`);
    }
    ticks.push(...late);
  });

  it.skipIf(skip)(
    'regression: merges a late trade exactly into minutes whose raw trades are gone',
    async () => {
      // What a retention policy, or an operator's drop_chunks, does to old raw trades.
      const client = await connect(target);
      try {
        if (expected === 'timescaledb') {
          await client.query(`SELECT drop_chunks('ticks', older_than => $1::timestamptz)`, [
            new Date(START + 3 * DAY).toISOString(),
          ]);
        } else {
          await client.query('DELETE FROM ticks WHERE ts < $1', [new Date(START + 3 * DAY)]);
        }
      } finally {
        await client.end();
      }
      expect(await repo.readTrades(BTC, START - DAY, START + 3 * DAY)).toEqual([]);
      // A minute with many trades gets a new open, a new high and a new close; another gets a
      // trade in the middle of its order; both have more volume.
      const busiest = [...aggregateTicks(ticks, '1m').get(BTC)!].sort(
        (a, b) => b.volume - a.volume,
      )[0]!;
      const late = [
        makeTick({ symbol: BTC, ts: busiest.time, price: busiest.high * 2, size: 0.1, id: '!' }),
        makeTick({ symbol: BTC, ts: busiest.time + 59_999, price: 0.5, size: 0.3, id: '~~' }),
        makeTick({ symbol: BTC, ts: START + 7_200_000 + 30_000, price: 150, size: 0.7, id: 'mid' }),
      ];
      const result = await repo.insertTrades(late);
      expect(result.inserted).toBe(3);
      const all = [...ticks, ...late];
      expectExactMinutes(
        all,
        BTC,
        await repo.readBars(BTC, '1m', START - DAY, START + 3 * DAY),
        '1m merged without raw trades',
      );
      for (const interval of INTERVALS) {
        const bars = await repo.readBars(BTC, interval, START - DAY, START + 3 * DAY);
        expectSameBars(oracle(all, BTC, interval), bars, `${interval} merged without raw trades`);
      }
      ticks.push(...late);
    },
  );

  it.skipIf(skip)('shows the still-forming bucket without a refresh', async () => {
    const newest = Math.max(...ticks.map((t) => t.ts));
    const forming = makeTick({
      symbol: BTC,
      ts: newest + 1_000,
      price: 7,
      size: 1.5,
      id: 'forming',
    });
    await repo.insertTrades([forming]);
    ticks.push(forming);
    for (const interval of ['1m', '1h', '1d'] as const) {
      const bars = await repo.readBars(BTC, interval, START - 7 * DAY, FAR_FUTURE);
      expectSameBars(oracle(ticks, BTC, interval).slice(-2), bars.slice(-2), `${interval} forming`);
      expect(bars.at(-1)?.close).toBe(7);
    }
  });

  it.skipIf(skip)(
    'fills minutes without trades from candles, never counting a minute twice',
    async () => {
      const SOL = 'SOL-USD' as MarketSymbol;
      const t0 = Date.UTC(2024, 5, 3, 10); // a Monday, 10:00
      const trades = [
        makeTick({ symbol: SOL, ts: t0 + 30 * 60_000 + 5_000, price: 150, size: 1, id: 'a' }),
        makeTick({ symbol: SOL, ts: t0 + 30 * 60_000 + 9_000, price: 151, size: 2, id: 'b' }),
        makeTick({ symbol: SOL, ts: t0 + 31 * 60_000 + 1_000, price: 149, size: 1, id: 'c' }),
      ];
      await repo.insertTrades(trades);
      // An hour of candles from an import, overlapping the two minutes that have trades.
      const candles: Bar[] = Array.from({ length: 60 }, (_, m) => ({
        time: t0 + m * 60_000,
        open: 140 + m / 10,
        high: 141 + m / 10,
        low: 139 + m / 10,
        close: 140.5 + m / 10,
        volume: 10 + m,
      }));
      const stored = await repo.upsertCandles(SOL, candles, 'file');
      expect(stored).toEqual({ written: 58, skipped: 2 });
      // The same import again rewrites only candle minutes; still skips the traded ones.
      expect(await repo.upsertCandles(SOL, candles, 'file')).toEqual({ written: 58, skipped: 2 });
      await repo.refreshAggregates(t0, t0 + 3_600_000);

      const fromTrades = oracle(trades, SOL, '1m');
      const expected1m = candles.map((c) => fromTrades.find((b) => b.time === c.time) ?? c);
      expectSameBars(expected1m, await repo.readBars(SOL, '1m', t0, t0 + 3_600_000), '1m merged');
      for (const interval of ['5m', '15m', '30m', '1h', '4h', '1d', '1w'] as const) {
        expectSameBars(
          rollupBars(expected1m, '1m', interval),
          await repo.readBars(SOL, interval, t0 - 7 * DAY, t0 + 7 * DAY),
          `${interval} merged`,
        );
      }

      // A trade later lands in a candle-only minute: the minute becomes tick-derived.
      const lateTrade = makeTick({
        symbol: SOL,
        ts: t0 + 45 * 60_000 + 1,
        price: 300,
        size: 0.5,
        id: 'd',
      });
      await repo.insertTrades([lateTrade]);
      await repo.refreshAggregates(t0, t0 + 3_600_000);
      const minute = await repo.readBars(SOL, '1m', t0 + 45 * 60_000, t0 + 46 * 60_000);
      expect(minute).toEqual([
        { time: t0 + 45 * 60_000, open: 300, high: 300, low: 300, close: 300, volume: 0.5 },
      ]);
      const hour = await repo.readBars(SOL, '1h', t0, t0 + 3_600_000);
      const merged = expected1m.map((b) => (b.time === t0 + 45 * 60_000 ? minute[0]! : b));
      expectSameBars(rollupBars(merged, '1m', '1h'), hour, '1h after a trade replaced a candle');
    },
  );

  it.skipIf(skip)('refuses candles that are not whole minutes or break OHLC', async () => {
    const bad: Bar = {
      time: Date.UTC(2024, 0, 1, 0, 0, 30),
      open: 1,
      high: 2,
      low: 1,
      close: 1,
      volume: 1,
    };
    await expect(repo.upsertCandles(BTC, [bad], 'file')).rejects.toThrow(
      /not on a minute boundary/,
    );
    await expect(
      repo.upsertCandles(BTC, [{ ...bad, time: Date.UTC(2024, 0, 1), high: 0.5 }], 'file'),
    ).rejects.toThrow(/high below/);
  });

  it.skipIf(skip)(
    'answers the last bars, the last bucket per symbol and the covered ranges',
    async () => {
      const last = await repo.lastBars(BTC, '1h', 5);
      const all = await repo.readBars(BTC, '1h', 0, FAR_FUTURE);
      expect(last).toEqual(all.slice(-5));
      expect(await repo.lastBars(BTC, '1m', 3, all[1]!.time)).toEqual(
        (await repo.readBars(BTC, '1m', 0, all[1]!.time)).slice(-3),
      );
      const lastBuckets = await repo.lastBuckets();
      expect(lastBuckets.get(BTC)).toBe(
        (await repo.readBars(BTC, '1m', 0, FAR_FUTURE)).at(-1)!.time,
      );
      const SOL = 'SOL-USD' as MarketSymbol;
      const t0 = Date.UTC(2024, 5, 3, 10);
      expect(await repo.coveredRanges(SOL)).toEqual([{ from: t0, to: t0 + 3_600_000 }]);
      await repo.upsertCandles(
        SOL,
        [{ time: t0 + 2 * 3_600_000, open: 1, high: 1, low: 1, close: 1, volume: 0 }],
        'file',
      );
      expect(await repo.coveredRanges(SOL)).toEqual([
        { from: t0, to: t0 + 3_600_000 },
        { from: t0 + 2 * 3_600_000, to: t0 + 2 * 3_600_000 + 60_000 },
      ]);
    },
  );
  it.skipIf(skip)(
    'stores hour and day candles where there are no minutes, each interval answering what it can',
    async () => {
      const ADA = 'ADA-USD' as MarketSymbol;
      const HOUR = 3_600_000;
      const d0 = Date.UTC(2023, 2, 6); // a Monday, long before every other row here
      const bar = (time: number, base: number, volume: number): Bar => ({
        time,
        open: base,
        high: base + 2,
        low: base - 1,
        close: base + 1,
        volume,
      });
      // The day before: only a daily candle. Day d0: a daily candle first, then hours 0-19
      // (finer wins: they replace it), then the minutes of 20:00-23:59.
      const sunday = bar(d0 - DAY, 50, 1_000);
      const hours = Array.from({ length: 20 }, (_, h) => bar(d0 + h * HOUR, 60 + h, 100 + h));
      const minutes = Array.from({ length: 240 }, (_, m) =>
        bar(d0 + 20 * HOUR + m * 60_000, 80 + m / 100, 1 + m / 8),
      );
      expect(await repo.upsertCandles(ADA, [sunday, bar(d0, 10, 1)], 'cc', '1d')).toEqual({
        written: 2,
        skipped: 0,
      });
      expect(await repo.upsertCandles(ADA, hours, 'cc', '1h')).toEqual({
        written: 20,
        skipped: 0,
      });
      expect(await repo.upsertCandles(ADA, minutes, 'cc')).toEqual({ written: 240, skipped: 0 });
      // Coarser candles over periods that have finer rows are skipped; the same hours again
      // change nothing.
      expect(await repo.upsertCandles(ADA, [bar(d0 + 21 * HOUR, 999, 9)], 'cc', '1h')).toEqual({
        written: 0,
        skipped: 1,
      });
      expect(await repo.upsertCandles(ADA, [bar(d0, 999, 9)], 'cc', '1d')).toEqual({
        written: 0,
        skipped: 1,
      });
      expect(await repo.upsertCandles(ADA, hours, 'cc', '1h')).toEqual({
        written: 20,
        skipped: 0,
      });
      await expect(
        repo.upsertCandles(ADA, [bar(d0 + HOUR / 2, 10, 1)], 'cc', '1h'),
      ).rejects.toThrow(/not on an hour boundary/);
      await repo.refreshAggregates(d0 - DAY, d0 + DAY);
      if (expected === 'timescaledb') await runPolicyJobs(target);

      const window = [d0 - 7 * DAY, d0 + 7 * DAY] as const;
      const expectedHours = [...hours, ...rollupBars(minutes, '1m', '1h')];
      const expectedDays = [sunday, ...rollupBars(expectedHours, '1h', '1d')];
      const want: Record<Interval, Bar[]> = {
        '1m': minutes,
        '5m': rollupBars(minutes, '1m', '5m'),
        '15m': rollupBars(minutes, '1m', '15m'),
        '30m': rollupBars(minutes, '1m', '30m'),
        '1h': expectedHours,
        '4h': rollupBars(expectedHours, '1h', '4h'),
        '1d': expectedDays,
        '1w': rollupBars(expectedDays, '1d', '1w'),
      };
      for (const interval of INTERVALS) {
        expectSameBars(
          want[interval],
          await repo.readBars(ADA, interval, ...window),
          `${interval} with hour and day candles`,
        );
      }
      // Coverage counts the periods coarse candles stand for: one stretch of two days.
      expect(await repo.coveredRanges(ADA)).toEqual([{ from: d0 - DAY, to: d0 + DAY }]);
      expect(await repo.coveredRanges(ADA, d0 + 5 * HOUR + 60_000, d0 + 6 * HOUR)).toEqual([
        { from: d0 + 5 * HOUR + 60_000, to: d0 + 6 * HOUR },
      ]);

      // A trade inside an hour candle's hour and one inside the daily candle's day: the trade's
      // minute replaces the coarse candle, which is never counted beside it.
      const inHour = makeTick({ symbol: ADA, ts: d0 + 5 * HOUR + 7, price: 70, size: 3, id: 'h' });
      const inDay = makeTick({ symbol: ADA, ts: d0 - DAY + 7, price: 40, size: 2, id: 'd' });
      await repo.insertTrades([inHour, inDay]);
      await repo.refreshAggregates(d0 - DAY, d0 + DAY);
      const tradeBar = (t: Tick): Bar => oracle([t], ADA, '1h')[0]!;
      const hoursAfter = expectedHours.map((b) =>
        b.time === d0 + 5 * HOUR ? tradeBar(inHour) : b,
      );
      expectSameBars(
        [tradeBar(inDay), ...hoursAfter],
        await repo.readBars(ADA, '1h', ...window),
        '1h after a trade',
      );
      expectSameBars(
        [oracle([inDay], ADA, '1d')[0]!, ...rollupBars(hoursAfter, '1h', '1d')],
        await repo.readBars(ADA, '1d', ...window),
        '1d after a trade',
      );
      expect(await repo.readBars(ADA, '1m', d0 - DAY, d0)).toEqual(oracle([inDay], ADA, '1m'));
    },
  );
});
