/**
 * Plain PostgreSQL's hourly and daily series (migration 0009): bars_1h and bars_1d, kept by
 * triggers on bars_1m, must give every ohlcv_* relation exactly what the 0008 views computed from
 * bars_1m, whoever writes it and however; and an upgrade from 0008 keeps every bar.
 */
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bar, CandleSpan, Interval, MarketSymbol, Tick } from '@candlestream/core';
import { diffBars, INTERVAL_MS, INTERVALS, rollupBars } from '@candlestream/core';
import { makeTick, randomTicks, seededRandom, shuffled } from '@candlestream/core/testing';
import { silentLogger } from '@candlestream/logger';
import { createTestSchema, needServices, waitUntil } from '@candlestream/testkit';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from './connection.js';
import { migrate, MIGRATIONS_DIR } from './migrate.js';
import { Repository } from './repository.js';

const services = needServices(['postgres']);

const BTC = 'BTC-USD' as MarketSymbol;
const ETH = 'ETH-USD' as MarketSymbol;
const SOL = 'SOL-USD' as MarketSymbol;
const SYMBOLS = [BTC, ETH, SOL];
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** A Monday; the data spans six days from here. */
const D0 = Date.UTC(2024, 2, 4);
const FAR_FUTURE = Date.UTC(2100, 0, 1);
/** Higher volumes are float sums in some order (docs/STORAGE.md, Numbers); OHLC is exact. */
const VOLUME_TOLERANCE = { volumeRelTol: 1e-9 };

const RELATIONS = [
  'ohlcv_1m',
  'ohlcv_5m',
  'ohlcv_15m',
  'ohlcv_1h',
  'ohlcv_4h',
  'ohlcv_1d',
] as const;
type Relation = (typeof RELATIONS)[number];

/** The view bodies of migration 0008 (ohlcv_1m from 0008 too), over bars_1m. */
const VIEW_0008 = (width: string, filter: string): string => `
SELECT date_bin(INTERVAL '${width}', bucket, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       symbol,
       (array_agg(open ORDER BY bucket))[1] AS open,
       max(high) AS high,
       min(low) AS low,
       (array_agg(close ORDER BY bucket DESC))[1] AS close,
       sum(volume) AS volume
FROM bars_1m
WHERE ${filter}
GROUP BY 1, 2`;
const REFERENCE: Record<Relation, string> = {
  ohlcv_1m: 'SELECT bucket, symbol, open, high, low, close, volume FROM bars_1m WHERE span_min = 1',
  ohlcv_5m: VIEW_0008('5 minutes', 'span_min = 1'),
  ohlcv_15m: VIEW_0008('15 minutes', 'span_min = 1'),
  ohlcv_1h: VIEW_0008('1 hour', 'span_min <= 60'),
  ohlcv_4h: VIEW_0008('4 hours', 'span_min <= 60'),
  ohlcv_1d: VIEW_0008('1 day', 'TRUE'),
};
const INTERVAL_OF: Record<Relation, Interval> = {
  ohlcv_1m: '1m',
  ohlcv_5m: '5m',
  ohlcv_15m: '15m',
  ohlcv_1h: '1h',
  ohlcv_4h: '4h',
  ohlcv_1d: '1d',
};

type Series = Map<string, Bar[]>;

/** Every symbol's bars of a relation (or any query with its columns), ascending. */
async function readSeries(client: pg.Client, relation: string): Promise<Series> {
  const rows = await client.query<Bar & { symbol: string }>(
    `SELECT symbol, (extract(epoch FROM bucket) * 1000)::float8 AS time, open, high, low, close, volume
     FROM (${relation}) AS r ORDER BY symbol, bucket`,
  );
  const out: Series = new Map();
  for (const { symbol, ...bar } of rows.rows) {
    let bars = out.get(symbol);
    if (!bars) out.set(symbol, (bars = []));
    bars.push(bar);
  }
  return out;
}

function expectSameSeries(expected: Series, actual: Series, label: string): void {
  expect([...actual.keys()], `${label}: symbols`).toEqual([...expected.keys()]);
  for (const [symbol, bars] of expected) {
    expect(diffBars(bars, actual.get(symbol)!, VOLUME_TOLERANCE), `${label} ${symbol}`).toEqual([]);
  }
}

/** Copies the migrations up to and including `version` into a fresh folder. */
async function migrationsThrough(version: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `cs-migrations-${version}-`));
  await cp(MIGRATIONS_DIR, dir, { recursive: true });
  for (const file of await readdir(dir)) {
    if (file.slice(0, 4) > version) await rm(join(dir, file));
  }
  return dir;
}

/** A valid candle around `base`. */
function candle(time: number, base: number, random: () => number): Bar {
  const open = base + random() - 0.5;
  const close = base + random() - 0.5;
  return {
    time,
    open,
    close,
    high: Math.max(open, close) + random(),
    low: Math.min(open, close) - random(),
    volume: Math.round(random() * 1e6) / 1e3,
  };
}

/** `count` consecutive candles of `span` from a random aligned start in [from, from + spanMs). */
function candleRun(
  random: () => number,
  span: CandleSpan,
  from: number,
  spanMs: number,
  count: number,
): Bar[] {
  const width = INTERVAL_MS[span];
  const start = from + Math.floor((random() * spanMs) / width) * width;
  const base = 50 + random() * 100;
  return Array.from({ length: count }, (_, i) => candle(start + i * width, base + i / 10, random));
}

describe.skipIf(services.skip)('hour and day series on plain PostgreSQL (migration 0009)', () => {
  let url: string;
  let target: { url: string; schema: string };
  let drop: () => Promise<void>;
  let repo: Repository;
  let client: pg.Client;

  beforeAll(async () => {
    url = services.get('postgres').url;
    const schema = await createTestSchema(url, 'series');
    drop = () => schema.drop();
    target = { url, schema: schema.schema };
    expect((await migrate(target, { logger: silentLogger() })).backend).toBe('postgres');
    repo = new Repository({ ...target, logger: silentLogger(), poolMax: 4 });
    client = await connect(target);
  });
  afterAll(async () => {
    await client?.end();
    await repo?.close();
    await drop?.();
  });

  /**
   * Every ohlcv_* relation equals the 0008 view over today's bars_1m, and the repository reads
   * the same bars at every interval (30m and 1w rolled up from the reference 15m and 1d).
   */
  async function expectAsViews0008(label: string): Promise<void> {
    const reference = new Map<Relation, Series>();
    for (const relation of RELATIONS) {
      const want = await readSeries(client, REFERENCE[relation]);
      reference.set(relation, want);
      expectSameSeries(want, await readSeries(client, `SELECT * FROM ${relation}`), label);
    }
    for (const symbol of SYMBOLS) {
      const want = (relation: Relation): Bar[] => reference.get(relation)!.get(symbol) ?? [];
      const expected: Record<Interval, Bar[]> = {
        '1m': want('ohlcv_1m'),
        '5m': want('ohlcv_5m'),
        '15m': want('ohlcv_15m'),
        '30m': rollupBars(want('ohlcv_15m'), '15m', '30m'),
        '1h': want('ohlcv_1h'),
        '4h': want('ohlcv_4h'),
        '1d': want('ohlcv_1d'),
        '1w': rollupBars(want('ohlcv_1d'), '1d', '1w'),
      };
      for (const interval of INTERVALS) {
        expect(
          diffBars(
            expected[interval],
            await repo.readBars(symbol, interval, 0, FAR_FUTURE),
            VOLUME_TOLERANCE,
          ),
          `${label}: readBars ${symbol} ${interval}`,
        ).toEqual([]);
      }
    }
  }

  it('keeps every ohlcv_* relation equal to the 0008 views under random mixed writes', async () => {
    const random = seededRandom(17);
    const some = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    // Day candles on days 0-2, hour candles on days 0-3 (replacing day candles), minute candles
    // over the six days (replacing either), then trades on days 1-5 (replacing all three).
    for (const symbol of SYMBOLS) {
      await repo.upsertCandles(symbol, candleRun(random, '1d', D0, DAY, 3), 'cc', '1d');
    }
    await expectAsViews0008('day candles');
    for (let i = 0; i < 6; i++) {
      const run = candleRun(random, '1h', D0, 4 * DAY - 20 * HOUR, 1 + Math.floor(random() * 20));
      await repo.upsertCandles(some(SYMBOLS), run, 'cc', '1h');
    }
    await expectAsViews0008('hour candles');
    for (let i = 0; i < 6; i++) {
      const run = candleRun(random, '1m', D0, 6 * DAY - 3 * HOUR, 1 + Math.floor(random() * 180));
      await repo.upsertCandles(some(SYMBOLS), run, 'file');
    }
    await expectAsViews0008('minute candles');

    const trades = randomTicks({
      seed: 170,
      count: 3_000,
      from: D0 + DAY,
      spanMs: 5 * DAY,
      symbols: SYMBOLS,
      tsStepMs: 1_000,
    });
    const arrival = shuffled(trades, random);
    for (let i = 0; i < arrival.length; i += 750) {
      await repo.insertTrades(arrival.slice(Math.max(0, i - 50), i + 750));
      await expectAsViews0008(`trades batch ${i / 750}`);
    }
    // Late trades into old hours: into an hour candle's hour, a day candle's day, a candle minute.
    const rows = await client.query<{ symbol: string; ms: number; span: number }>(
      `SELECT DISTINCT ON (span_min) symbol, (extract(epoch FROM bucket) * 1000)::float8 AS ms,
              span_min AS span
       FROM bars_1m ORDER BY span_min, bucket`,
    );
    expect(rows.rows.map((r) => r.span)).toEqual([1, 60, 1440]);
    const late: Tick[] = rows.rows.map((r, i) =>
      makeTick({
        symbol: r.symbol as MarketSymbol,
        ts: r.ms + 17 * MINUTE + i,
        price: 1_000 + i,
        size: 0.25,
      }),
    );
    await repo.insertTrades(late);
    await expectAsViews0008('late trades');

    // Coarse candles again over everything: skipped where finer rows exist, written elsewhere.
    await repo.upsertCandles(BTC, candleRun(random, '1h', D0, 1, 6 * 24), 'cc', '1h');
    await repo.upsertCandles(ETH, candleRun(random, '1d', D0 - 2 * DAY, 1, 9), 'cc', '1d');
    await expectAsViews0008('coarse candles again');

    // A rebuild from the stored trades, over hours with and without them.
    await repo.rebuildMinutes(SOL, D0 + DAY + 5 * HOUR, D0 + DAY + 8 * HOUR + 30 * MINUTE);
    await expectAsViews0008('rebuild');

    // Other writers (psql): deletes, updates and inserts of any spans, several symbols at once.
    const at = (ms: number): Date => new Date(ms);
    const raw = async (sql: string, params: unknown[] = []): Promise<number> =>
      (await client.query(sql, params)).rowCount ?? 0;
    expect(
      await raw(`DELETE FROM bars_1m WHERE symbol = $1 AND bucket >= $2 AND bucket < $3`, [
        BTC,
        at(D0 + 2 * DAY + 10 * HOUR + 20 * MINUTE),
        at(D0 + 2 * DAY + 12 * HOUR + 5 * MINUTE),
      ]),
    ).toBeGreaterThan(0);
    await expectAsViews0008('raw delete of minutes');
    expect(
      await raw(`DELETE FROM bars_1m WHERE span_min = 1440 AND symbol = $1`, [ETH]),
    ).toBeGreaterThan(0);
    expect(
      await raw(
        `DELETE FROM bars_1m WHERE span_min = 60 AND bucket = (SELECT min(bucket) FROM bars_1m WHERE span_min = 60)`,
      ),
    ).toBeGreaterThan(0);
    await expectAsViews0008('raw delete of coarse candles');
    expect(
      await raw(`UPDATE bars_1m SET open = high, close = low WHERE bucket >= $1 AND bucket < $2`, [
        at(D0 + 3 * DAY + 23 * HOUR),
        at(D0 + 4 * DAY + 2 * HOUR),
      ]),
    ).toBeGreaterThan(0);
    await expectAsViews0008('raw update across a day boundary, every symbol');
    // An hour candle's row turned into a minute and moved to another day, as a fix-up might: its
    // old hour and day lose it.
    expect(
      await raw(
        `UPDATE bars_1m SET span_min = 1, bucket = $2
         WHERE symbol = $1 AND span_min = 60
           AND bucket = (SELECT max(bucket) FROM bars_1m WHERE span_min = 60 AND symbol = $1)`,
        [BTC, at(D0 - 10 * DAY + 7 * MINUTE)],
      ),
    ).toBe(1);
    await expectAsViews0008('raw update of span and bucket');
    expect(
      await raw(
        `INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, origin, span_min)
         VALUES ($1, $3, 5, 6, 4, 5, 1, 'candles', 1440), ($2, $4, 7, 8, 6, 7, 2, 'candles', 60)`,
        [SOL, ETH, at(D0 - 5 * DAY), at(D0 - 4 * DAY + 3 * HOUR)],
      ),
    ).toBe(2);
    await expectAsViews0008('raw insert of coarse candles');
    // A day candle beside the minutes of its day (no writer here does that; the views answer
    // it all the same): the day opens with the candle at 00:00, before hour 00:00's first minute.
    await raw('DELETE FROM bars_1m WHERE symbol = $1 AND bucket = $2', [BTC, at(D0 + 5 * DAY)]);
    expect(
      await raw(
        `INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, origin, span_min)
         VALUES ($1, $2, 1, 1000000, 0.5, 2, 3, 'candles', 1440)`,
        [BTC, at(D0 + 5 * DAY)],
      ),
    ).toBe(1);
    await expectAsViews0008('a day candle beside minutes');

    await client.query('TRUNCATE bars_1m');
    await expectAsViews0008('truncate');
    expect(
      (await client.query('SELECT 1 FROM bars_1h UNION ALL SELECT 1 FROM bars_1d')).rowCount,
    ).toBe(0);
  });

  it('regression: two writers of one hour without the series lock both count', async () => {
    // Without the trigger's lock, the second writer's recompute would not see the first one's
    // minute (uncommitted then) and would store the hour without it.
    const first = await connect(target);
    const second = await connect(target);
    const hour = Date.UTC(2024, 5, 1, 12);
    const insert = (minute: number, price: number): string =>
      `INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, origin)
       VALUES ('ADA-USD', TIMESTAMPTZ 'epoch' + ${hour + minute * MINUTE} * INTERVAL '1 millisecond',
               ${price}, ${price}, ${price}, ${price}, 1, 'candles')`;
    try {
      await first.query('BEGIN');
      await first.query(insert(10, 2));
      await second.query('BEGIN');
      const pid = (await second.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!
        .pid;
      const blocked = second.query(insert(40, 3)).then(
        () => undefined,
        (err: unknown) => err,
      );
      await waitUntil('the second writer to wait for the first', async () => {
        const row = await client.query(
          `SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'`,
          [pid],
        );
        return row.rowCount === 1;
      });
      await first.query('COMMIT');
      expect(await blocked).toBeUndefined();
      await second.query('COMMIT');
    } finally {
      await first.end();
      await second.end();
    }
    const stored = await readSeries(client, `SELECT * FROM ohlcv_1h WHERE symbol = 'ADA-USD'`);
    expect(stored.get('ADA-USD')).toEqual([
      { time: hour, open: 2, high: 3, low: 2, close: 3, volume: 2 },
    ]);
    await expectAsViews0008('two writers');
  });

  it('upgrades a database with history from 0008 to 0009 with the same bars in every relation', async () => {
    const dir = await migrationsThrough('0008');
    const schema = await createTestSchema(url, 'series_upgrade');
    const old = { url, schema: schema.schema };
    const repository = new Repository({ ...old, logger: silentLogger(), poolMax: 4 });
    const oldClient = await connect(old);
    try {
      const applied = (await migrate(old, { dir, logger: silentLogger() })).applied;
      expect(applied.at(-1)).toBe('0008_coarse_candles');
      const random = seededRandom(9);
      // History as 0008 stores it: day candles, hour candles, minute candles and trades, with
      // finer rows having replaced coarser ones.
      await repository.upsertCandles(BTC, candleRun(random, '1d', D0, 1, 3), 'cc', '1d');
      await repository.upsertCandles(ETH, candleRun(random, '1d', D0, 1, 2), 'cc', '1d');
      await repository.upsertCandles(BTC, candleRun(random, '1h', D0 + DAY, 1, 30), 'cc', '1h');
      await repository.upsertCandles(BTC, candleRun(random, '1m', D0 + 2 * DAY, 1, 200), 'file');
      await repository.insertTrades(
        randomTicks({
          seed: 90,
          count: 2_000,
          from: D0 + 2 * DAY + 2 * HOUR,
          spanMs: 2 * DAY,
          symbols: [BTC, ETH],
        }),
      );
      await repository.insertTrades([
        makeTick({ symbol: BTC, ts: D0 + DAY + 5 * HOUR + 9, price: 300, size: 2 }),
        makeTick({ symbol: ETH, ts: D0 + 7 * HOUR, price: 30, size: 1 }),
      ]);
      const spans = await oldClient.query<{ span: number }>(
        'SELECT DISTINCT span_min AS span FROM bars_1m ORDER BY 1',
      );
      expect(spans.rows.map((r) => r.span)).toEqual([1, 60, 1440]);
      const before = new Map<Relation, Series>();
      for (const relation of RELATIONS) {
        before.set(relation, await readSeries(oldClient, `SELECT * FROM ${relation}`));
      }
      expect(before.get('ohlcv_1d')!.get(BTC)!.length).toBeGreaterThan(3);

      expect((await migrate(old, { logger: silentLogger() })).applied).toEqual([
        '0009_hour_day_series',
      ]);
      for (const relation of RELATIONS) {
        const after = await readSeries(oldClient, `SELECT * FROM ${relation}`);
        expectSameSeries(before.get(relation)!, after, `${relation} upgraded`);
        for (const symbol of [BTC, ETH]) {
          expect(
            diffBars(
              before.get(relation)!.get(symbol)!,
              await repository.readBars(symbol, INTERVAL_OF[relation], 0, FAR_FUTURE),
              VOLUME_TOLERANCE,
            ),
            `${relation} ${symbol} read after the upgrade`,
          ).toEqual([]);
        }
      }
      // And the triggers keep the backfilled series: a late trade in a backfilled hour and day.
      await repository.insertTrades([
        makeTick({ symbol: BTC, ts: D0 + 2 * DAY + 30 * MINUTE + 1, price: 10_000, size: 1 }),
      ]);
      for (const relation of RELATIONS) {
        expectSameSeries(
          await readSeries(oldClient, REFERENCE[relation]),
          await readSeries(oldClient, `SELECT * FROM ${relation}`),
          `${relation} written after the upgrade`,
        );
      }
    } finally {
      await oldClient.end();
      await repository.close();
      await schema.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
