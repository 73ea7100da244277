import type { Bar, EpochMs, Interval, MarketSymbol, Tick } from '@candlestream/core';
import { aggregateTicks, diffBars, floorBucket, MINUTE_MS } from '@candlestream/core';
import { makeTick, randomTicks, seededRandom } from '@candlestream/core/testing';
import { migrate, Repository } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import type { TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistorySource, ReplayRange } from '../replay/types.js';
import { expandMinute } from './expand.js';
import { compareReplay } from './order.js';
import { storedHistory } from './stored.js';

const services = needServices(['postgres']);

const BTC = 'BTC-USD' as MarketSymbol;
const ETH = 'ETH-USD' as MarketSymbol;
const SYMBOLS = [BTC, ETH];
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Trades over two hours that cross midnight, so 1d has two buckets. */
const TRADES_FROM = Date.UTC(2024, 2, 4, 22, 30);
const TRADES_SPAN_MS = 2 * HOUR;
/** An hour of candles only, after the trades, for both symbols at the same minutes. */
const CANDLES_FROM = TRADES_FROM + TRADES_SPAN_MS;
const CANDLE_MINUTES = 60;
const RANGE: ReplayRange = {
  symbols: SYMBOLS,
  from: floorBucket(TRADES_FROM, '1d'),
  to: floorBucket(TRADES_FROM, '1d') + 2 * DAY,
};
/** Minutes (BTC) where the trades were never stored, only a candle; ETH trades there remain. */
const BTC_CANDLE_GAPS = [TRADES_FROM + 10 * MINUTE_MS, TRADES_FROM + 61 * MINUTE_MS];
/** Minutes whose raw trades are deleted after storing (retention): their bars stay. */
const DROPPED: { symbol: MarketSymbol; minute: EpochMs }[] = [
  { symbol: BTC, minute: TRADES_FROM + 20 * MINUTE_MS },
  { symbol: ETH, minute: TRADES_FROM + 20 * MINUTE_MS },
  { symbol: ETH, minute: TRADES_FROM + 45 * MINUTE_MS },
];
/** One minute of BTC with far more trades than a small page. */
const BUSY_MINUTE = TRADES_FROM + 30 * MINUTE_MS;
const BUSY_TRADES = 250;
/** Ids the read must carry into SQL (a page's last id is the next page's key) unchanged. */
const QUOTED_IDS_TS = TRADES_FROM + 7 * MINUTE_MS + 321;
const QUOTED_IDS = ["it's", 'back\\slash', ':from', '$1', "'; DROP TABLE ticks; --", 'a"b', 'ünï'];
/** A zero-volume candle (flat, as vendors report a minute without trades). */
const ZERO_MINUTE = CANDLES_FROM + 30 * MINUTE_MS;
/** An hour candle days before the range: replayed as nothing. */
const HOUR_CANDLE: Bar = {
  time: Date.UTC(2024, 2, 1, 10),
  open: 50,
  high: 55,
  low: 45,
  close: 52,
  volume: 1_234.5,
};
const SMALL_PAGE_TRADES = 100;
const VOLUME_TOLERANCE = { volumeRelTol: 1e-9 };

async function replay(
  source: HistorySource,
  range: ReplayRange,
  from: EpochMs = range.from,
): Promise<{ trades: Tick[]; pageSizes: number[] }> {
  const trades: Tick[] = [];
  const pageSizes: number[] = [];
  for await (const page of source.pages(range, from, new AbortController().signal)) {
    pageSizes.push(page.length);
    trades.push(...page);
  }
  return { trades, pageSizes };
}

function minuteOf(t: Pick<Tick, 'ts'>): EpochMs {
  return floorBucket(t.ts, '1m');
}

describe.skipIf(services.skip)('storedHistory on PostgreSQL', () => {
  let db: TestDatabase;
  let repo: Repository;
  /** What the replay must give: stored raw trades plus expanded trade-less minutes, in order. */
  let expected: Tick[];
  let expandedMinutes: { symbol: MarketSymbol; bar: Bar }[];
  let idsCollated = false;

  beforeAll(async () => {
    db = await createTestDatabase(services.get('postgres').url, 'sim_history');
    await migrate({ url: db.url }, { logger: silentLogger() });
    repo = new Repository({ url: db.url, logger: silentLogger() });
    // This server's default collation (C.UTF-8) already sorts ids by code point; store them
    // under an ICU collation where 'a' < 'B', as on an en_US server, so the replay's order
    // proves its COLLATE "C" rather than the database's default.
    const [icu] = await repo.sequelize.query(
      "SELECT 1 FROM pg_collation WHERE collname = 'en-x-icu'",
    );
    if (icu.length > 0) {
      await repo.sequelize.query(
        'ALTER TABLE ticks ALTER COLUMN trade_id TYPE text COLLATE "en-x-icu"',
      );
      idsCollated = true;
    }

    const random = seededRandom(11);
    const trades = randomTicks({
      seed: 5,
      count: 3_000,
      from: TRADES_FROM,
      spanMs: TRADES_SPAN_MS,
      symbols: SYMBOLS,
      tsStepMs: 250, // same-millisecond ties within and across symbols
    }).filter((t) => !(t.symbol === BTC && BTC_CANDLE_GAPS.includes(minuteOf(t))));
    const tieTs = TRADES_FROM + 5 * MINUTE_MS + 123;
    // Ids whose "C" order (B < _ < a < b) differs from en_US's (_ < a < B < b), and one id
    // shared by both symbols at the same millisecond (the symbol breaks the tie).
    for (const id of ['b', 'a', '_x', 'B', 'shared']) {
      trades.push(makeTick({ symbol: BTC, ts: tieTs, price: 100, id, size: 0.1 }));
    }
    trades.push(makeTick({ symbol: ETH, ts: tieTs, price: 200, id: 'shared', size: 0.2 }));
    for (const id of QUOTED_IDS) {
      trades.push(makeTick({ symbol: BTC, ts: QUOTED_IDS_TS, price: 100, id, size: 0.1 }));
    }
    // A raw ETH trade at exactly the time and id of an expanded BTC trade of a candle minute.
    const gap = BTC_CANDLE_GAPS[0]!;
    trades.push(
      makeTick({ symbol: ETH, ts: gap + 15_000, price: 200, id: `replay-${gap}-1`, size: 1 }),
    );
    for (let i = 0; i < BUSY_TRADES; i++) {
      trades.push(
        makeTick({
          symbol: BTC,
          ts: BUSY_MINUTE + Math.floor(i / 3) * 500, // three trades per millisecond
          price: 100 + random(),
          size: Math.round(random() * 1_000) / 1_000 + 0.001,
          id: `busy-${String(i).padStart(3, '0')}`,
        }),
      );
    }
    for (let i = 0; i < trades.length; i += 1_000) {
      await repo.insertTrades(trades.slice(i, i + 1_000));
    }

    // Candle-only minutes: the BTC gaps inside the trades, and an hour of both symbols after.
    const candle = (time: EpochMs, price: number, volume: number): Bar => {
      const up = random() < 0.5;
      const other = price * (1 + (random() - 0.5) / 50);
      return {
        time,
        open: up ? Math.min(price, other) : Math.max(price, other),
        high: Math.max(price, other) * (1 + random() / 100),
        low: Math.min(price, other) * (1 - random() / 100),
        close: up ? Math.max(price, other) : Math.min(price, other),
        volume,
      };
    };
    await repo.upsertCandles(
      BTC,
      BTC_CANDLE_GAPS.map((m) => candle(m, 100, random() * 50)),
      'test',
    );
    for (const [i, symbol] of SYMBOLS.entries()) {
      const bars: Bar[] = [];
      for (let m = 0; m < CANDLE_MINUTES; m++) {
        const time = CANDLES_FROM + m * MINUTE_MS;
        bars.push(
          time === ZERO_MINUTE
            ? { time, open: 100, high: 100, low: 100, close: 100, volume: 0 }
            : candle(time, 100 * (i + 1), random() * 10),
        );
      }
      await repo.upsertCandles(symbol, bars, 'test');
    }
    await repo.upsertCandles(BTC, [HOUR_CANDLE], 'test', '1h');
    // Retention dropped these minutes' raw trades; their tick-derived bars remain.
    for (const { symbol, minute } of DROPPED) {
      await repo.sequelize.query(
        `DELETE FROM ticks WHERE symbol = $1
           AND ts >= TIMESTAMPTZ 'epoch' + $2::bigint * INTERVAL '1 millisecond'
           AND ts < TIMESTAMPTZ 'epoch' + $3::bigint * INTERVAL '1 millisecond'`,
        { bind: [symbol, minute, minute + MINUTE_MS] },
      );
    }

    // The oracle, from the repository's own readers.
    const raw: Tick[] = [];
    for (const symbol of SYMBOLS)
      raw.push(...(await repo.readTrades(symbol, RANGE.from, RANGE.to)));
    const withTrades = new Set(raw.map((t) => `${t.symbol} ${minuteOf(t)}`));
    expandedMinutes = [];
    for (const symbol of SYMBOLS) {
      for (const bar of await repo.readBars(symbol, '1m', RANGE.from, RANGE.to)) {
        if (!withTrades.has(`${symbol} ${bar.time}`)) expandedMinutes.push({ symbol, bar });
      }
    }
    expected = [...raw, ...expandedMinutes.flatMap((m) => expandMinute(m.symbol, m.bar))].sort(
      compareReplay,
    );
  });

  afterAll(async () => {
    await repo?.close();
    await db?.drop();
  });

  it('has the fixture it means to test', () => {
    expect(idsCollated).toBe(true);
    // 2 BTC gaps + 2 × 60 candle minutes + 3 dropped minutes.
    expect(expandedMinutes).toHaveLength(2 + 2 * CANDLE_MINUTES + DROPPED.length);
    expect(
      expected.filter(
        (t) => t.ts >= BUSY_MINUTE && t.ts < BUSY_MINUTE + MINUTE_MS && t.symbol === BTC,
      ).length,
    ).toBeGreaterThan(BUSY_TRADES);
  });

  it('replays the stored trades and the expanded minutes in (ts, id, symbol) order, in bounded pages', async () => {
    const source = storedHistory({
      repository: repo,
      logger: silentLogger(),
      pageTrades: SMALL_PAGE_TRADES,
    });
    const { trades, pageSizes } = await replay(source, RANGE);
    expect(trades).toEqual(expected);
    for (let i = 1; i < trades.length; i++) {
      expect(compareReplay(trades[i - 1]!, trades[i]!), `at ${i}`).toBeLessThan(0);
    }
    expect(Math.max(...pageSizes)).toBeLessThanOrEqual(SMALL_PAGE_TRADES);
    expect(Math.min(...pageSizes)).toBeGreaterThan(0);
    expect(pageSizes.length).toBe(Math.ceil(expected.length / SMALL_PAGE_TRADES));
    // The ids of one millisecond in code-unit order, not the column's en_US order.
    const tieIds = trades.filter((t) => t.ts === TRADES_FROM + 5 * MINUTE_MS + 123);
    expect(tieIds.map((t) => `${t.symbol}:${t.id}`)).toEqual([
      'BTC-USD:B',
      'BTC-USD:_x',
      'BTC-USD:a',
      'BTC-USD:b',
      'BTC-USD:shared',
      'ETH-USD:shared',
    ]);
  });

  it('gives the same sequence for any page size, and on a second run', async () => {
    const runs = [];
    // 1: one minute per load; 13: three, so two symbols' minutes of one bucket split across loads.
    for (const pageTrades of [1, 13, 250, 5_000]) {
      const source = storedHistory({ repository: repo, logger: silentLogger(), pageTrades });
      runs.push((await replay(source, RANGE)).trades);
    }
    for (const run of runs) expect(run).toEqual(expected);
    const again = storedHistory({ repository: repo, logger: silentLogger(), pageTrades: 13 });
    expect((await replay(again, RANGE)).trades).toEqual(runs[1]);
  });

  it('keeps ids that SQL has to quote, at page edges too', async () => {
    const range: ReplayRange = { symbols: SYMBOLS, from: QUOTED_IDS_TS, to: QUOTED_IDS_TS + 1 };
    for (const pageTrades of [1, 2, 5_000]) {
      const source = storedHistory({ repository: repo, logger: silentLogger(), pageTrades });
      const { trades } = await replay(source, range);
      const quoted = trades.filter((t) => t.symbol === BTC && QUOTED_IDS.includes(t.id));
      expect(quoted.map((t) => t.id)).toEqual([...QUOTED_IDS].sort());
      expect(trades).toEqual(expected.filter((t) => t.ts === QUOTED_IDS_TS));
    }
  });

  it('aggregates to the stored bars at 1m, 5m, 1h and 1d', async () => {
    const source = storedHistory({ repository: repo, logger: silentLogger() });
    const { trades } = await replay(source, RANGE);
    for (const interval of ['1m', '5m', '1h', '1d'] as Interval[]) {
      const replayed = aggregateTicks(trades, interval);
      for (const symbol of SYMBOLS) {
        let stored = await repo.readBars(symbol, interval, RANGE.from, RANGE.to);
        // A zero-volume candle replays as four trades of the smallest positive size.
        if (interval === '1m') {
          stored = stored.map((b) =>
            b.time === ZERO_MINUTE ? { ...b, volume: 4 * Number.MIN_VALUE } : b,
          );
        }
        expect(stored.length).toBeGreaterThan(0);
        expect(
          diffBars(stored, replayed.get(symbol) ?? [], interval === '1m' ? {} : VOLUME_TOLERANCE),
          `${symbol} ${interval}`,
        ).toEqual([]);
      }
    }
  });

  it('starts a seek at the first trade with ts >= from', async () => {
    const source = storedHistory({
      repository: repo,
      logger: silentLogger(),
      pageTrades: SMALL_PAGE_TRADES,
    });
    const seeks = [
      TRADES_FROM + 5 * MINUTE_MS + 123, // a millisecond holding six trades of two symbols
      BUSY_MINUTE + 20_000, // inside the busy minute
      BTC_CANDLE_GAPS[0]! + 20_000, // inside an expanded minute: its last two trades remain
      CANDLES_FROM + 7 * MINUTE_MS + 1,
      RANGE.to - 1,
    ];
    for (const from of seeks) {
      const { trades, pageSizes } = await replay(source, RANGE, from);
      expect(trades, new Date(from).toISOString()).toEqual(expected.filter((t) => t.ts >= from));
      expect(Math.max(0, ...pageSizes)).toBeLessThanOrEqual(SMALL_PAGE_TRADES);
    }
    const inGap = (await replay(source, RANGE, BTC_CANDLE_GAPS[0]! + 20_000)).trades;
    expect(
      inGap.filter((t) => t.symbol === BTC && minuteOf(t) === BTC_CANDLE_GAPS[0]).map((t) => t.id),
    ).toEqual([`replay-${BTC_CANDLE_GAPS[0]}-2`, `replay-${BTC_CANDLE_GAPS[0]}-3`]);
  });

  it('keeps to the range: its symbols and [from, to)', async () => {
    const source = storedHistory({ repository: repo, logger: silentLogger(), pageTrades: 50 });
    const range: ReplayRange = {
      symbols: [ETH],
      from: TRADES_FROM + 15 * MINUTE_MS + 7,
      to: CANDLES_FROM + 10 * MINUTE_MS + 30_000,
    };
    const { trades } = await replay(source, range);
    expect(trades).toEqual(
      expected.filter((t) => t.symbol === ETH && t.ts >= range.from && t.ts < range.to),
    );
    expect((await replay(source, { ...range, symbols: [] })).trades).toEqual([]);
  });

  it('does not expand hour and day candles (no minutes there)', async () => {
    const source = storedHistory({ repository: repo, logger: silentLogger() });
    const range: ReplayRange = {
      symbols: SYMBOLS,
      from: HOUR_CANDLE.time - DAY,
      to: HOUR_CANDLE.time + DAY,
    };
    expect(await repo.readBars(BTC, '1h', range.from, range.to)).toEqual([HOUR_CANDLE]);
    expect((await replay(source, range)).trades).toEqual([]);
  });

  it('stops reading when aborted', async () => {
    const source = storedHistory({
      repository: repo,
      logger: silentLogger(),
      pageTrades: SMALL_PAGE_TRADES,
    });
    const controller = new AbortController();
    const seen: (readonly Tick[])[] = [];
    for await (const page of source.pages(RANGE, RANGE.from, controller.signal)) {
      seen.push(page);
      if (seen.length === 2) controller.abort();
    }
    expect(seen).toHaveLength(2);
    expect(seen.flat()).toEqual(expected.slice(0, 2 * SMALL_PAGE_TRADES));
  });
});
