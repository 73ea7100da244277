/**
 * Replays what PostgreSQL or TimescaleDB holds (docs/STORAGE.md): the raw trades of `ticks`, and
 * for the 1-minute bars whose raw trades are gone (dropped by retention, or imported and
 * backfilled candles that never had any) the trades of `expandMinute`, merged into one stream in
 * (ts, id, symbol) order and read a page at a time, so memory stays flat over any range.
 *
 * Two keyset streams feed the merge, neither ever using OFFSET:
 * - raw trades by (ts, trade_id COLLATE "C", symbol), `pageTrades` per query;
 * - trade-less minutes (`bars_1m` rows with span_min = 1 and no row in `ticks` in their minute,
 *   an anti-join on the ticks primary key) by (bucket, symbol), a quarter of that per query
 *   (four trades each), never past the newest raw trade fetched, so each query scans only the
 *   span of time one raw page covers.
 * Hour and day candles (span_min 60 and 1440) are not expanded: there are no minutes there to
 * replay, and guessing them would put invented prices at invented times.
 * A trade is emitted only when nothing unread can precede it: it is the smaller of the next raw
 * trade and the smallest pending expanded trade, and lies before the minute frontier (every
 * trade-less minute before the frontier has been loaded). Each stream's keyset moves forward
 * only, so no minute is expanded twice or missed at a page edge, and a minute holding more
 * trades than a page simply spans pages.
 *
 * Reading is built for the replay's thread, which the publisher keeps busy: a raw page and the
 * minutes of its span come in one statement and one round trip (every further round trip waits
 * for the thread to be free), as one JSON value (decoding it costs a third of decoding rows of
 * text fields), and the next page is asked for as soon as this one arrives.
 */
import type { Bar, EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import { floorBucket } from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import { epochMsSql as MS, fromEpochMsSql as FROM_MS } from '@candlestream/db';
import type { Logger } from '@candlestream/logger';
import type { HistorySource, ReplayRange } from '../replay/types.js';
import { expandMinute, hasNoSplittableVolume, EXPANDED_TRADE_OFFSETS_MS } from './expand.js';
import type { ReplayKey } from './order.js';
import { compareReplay, MinHeap, positiveCount } from './order.js';

/** Trades per page (and per raw query); a page of 5,000 ticks is about 1 MB in memory. */
export const DEFAULT_PAGE_TRADES = 5_000;

export interface StoredHistoryOptions {
  /** Only its `sequelize` is used; the caller owns (and closes) it. */
  repository: Pick<Repository, 'sequelize'>;
  logger: Logger;
  /** At most this many trades per page. Default DEFAULT_PAGE_TRADES. */
  pageTrades?: number;
}

/**
 * Planner settings for the statement after it, local to the implicit transaction of a
 * multi-statement simple query (PostgreSQL docs, "Multiple Statements in a Simple Query"), so
 * the plans below hold on tables never analyzed: without statistics (just loaded, before
 * autovacuum runs) the planner expects a handful of rows and prefers a bitmap scan of the whole
 * range plus a sort to the index scan in order that stops after a page, ten times slower per
 * page and worse the longer the range. Disabling sorts prices plans past jit_above_cost, and
 * compiling one costs about 100 ms, so no JIT either.
 */
const PLAN_SETTINGS_SQL = `SELECT set_config('enable_bitmapscan', 'off', true),
  set_config('enable_sort', 'off', true), set_config('jit', 'off', true);`;

/**
 * The next 1-minute bars without raw trades with bucket in [:minutesFrom, `limit`] (after symbol
 * :minutesAfter at bucket :minutesFrom when keyed), at most :pageMinutes, as one JSON array of
 * MinuteRow. Per symbol an index scan on the bars_1m primary key in bucket order with one ticks
 * primary-key probe per minute, stopping after :pageMinutes rows.
 */
const minutesJsonSql = (keyed: boolean, limit: string): string => `(
SELECT json_agg(json_build_array(b.symbol, ${MS('b.bucket')}, b.open, b.high, b.low, b.close, b.volume)
  ORDER BY b.bucket, b.symbol COLLATE "C")
FROM (
  SELECT b.* FROM unnest(ARRAY[:symbols]::text[]) AS s(symbol)
  CROSS JOIN LATERAL (
    SELECT m.symbol, m.bucket, m.open, m.high, m.low, m.close, m.volume FROM bars_1m m
    WHERE m.symbol = s.symbol AND m.span_min = 1
      AND m.bucket >= ${FROM_MS(':minutesFrom::float8')} AND m.bucket <= ${FROM_MS(limit)}
      ${keyed ? `AND (m.bucket > ${FROM_MS(':minutesFrom::float8')} OR m.symbol COLLATE "C" > :minutesAfter::text COLLATE "C")` : ''}
      AND NOT EXISTS (
        SELECT 1 FROM ticks k
        WHERE k.symbol = m.symbol AND k.ts >= m.bucket AND k.ts < m.bucket + INTERVAL '1 minute')
    ORDER BY m.bucket
    LIMIT :pageMinutes
  ) b
  ORDER BY b.bucket, b.symbol COLLATE "C"
  LIMIT :pageMinutes
) b)`;

/** A load of minutes on its own, when the one read with a raw page did not reach far enough. */
const minutesSql = (keyed: boolean): string =>
  `${PLAN_SETTINGS_SQL}\nSELECT ${minutesJsonSql(keyed, ':minutesLimit::float8')} AS minutes`;
const MINUTES_FIRST_SQL = minutesSql(false);
const MINUTES_NEXT_SQL = minutesSql(true);

/**
 * The next raw trades after a key (:from ts, :afterId, :afterSymbol) or from :from on (first
 * page), before :end, of the symbols :symbol1..:symbolN, as one JSON array of RawRow; with
 * `minutes`, also the first load of minutes from :minutesFrom up to the limit that page sets
 * (minutesLimit, in SQL). One branch per symbol, each an index scan on the primary key (symbol,
 * ts, trade_id) in ts order where only ties within a millisecond are sorted by id in "C" order
 * (an incremental sort); a Merge Append interleaves the branches, so a page reads about
 * :pageTrades rows in all, not that many per symbol. Keys are compared as float8, so a stored
 * time with sub-millisecond digits still compares equal. The aggregate has its own ORDER BY: a
 * subquery's order reaching an aggregate is usual, not promised (PostgreSQL docs, "Aggregate
 * Functions").
 */
const rawPageSql = (symbolCount: number, keyed: boolean, minutes: boolean): string => {
  const branch = (i: number): string => `(
    SELECT ${i} AS s, k.symbol, k.ts, k.trade_id, k.price, k.size, k.side, k.source FROM ticks k
    WHERE k.symbol = :symbol${i}
      AND k.ts >= ${FROM_MS(':from::float8')} AND k.ts < ${FROM_MS(':end::float8')}
      ${
        keyed
          ? `AND (k.ts > ${FROM_MS(':from::float8')}
           OR (k.trade_id COLLATE "C", k.symbol COLLATE "C") > (:afterId::text COLLATE "C", :afterSymbol::text COLLATE "C"))`
          : ''
      }
    ORDER BY k.ts, k.trade_id COLLATE "C"
    LIMIT :pageTrades)`;
  const branches = Array.from({ length: symbolCount }, (_, i) => branch(i + 1));
  const order = 'ORDER BY p.ts, p.trade_id COLLATE "C", p.symbol COLLATE "C"';
  return `${PLAN_SETTINGS_SQL}
SELECT a.page, a.minutes_limit${minutes ? `, ${minutesJsonSql(false, 'a.minutes_limit')} AS minutes` : ''}
FROM (
  SELECT json_agg(json_build_array(p.s, ${MS('p.ts')}, p.trade_id, p.price, p.size, p.side, p.source)
      ${order}) AS page,
    CASE WHEN count(*) < :pageTrades THEN :end::float8 - 1 ELSE ${MS('max(p.ts)')} END AS minutes_limit
  FROM (
    SELECT p.* FROM (${branches.join('\n    UNION ALL ')}) p
    ${order}
    LIMIT :pageTrades
  ) p
) a`;
};

/** A float8 as JSON has it: a number, or a string where JSON has none (Infinity, NaN). */
type JsonFloat = number | string;

/** A float8 from JSON, as pg's text parser (parseFloat) would give it. */
const float = (value: JsonFloat): number => (typeof value === 'number' ? value : Number(value));

/** A raw trade as rawPageSql sends it: the symbol by its 1-based position in the query's. */
type RawRow = [
  symbol: number,
  ts: JsonFloat,
  id: string,
  price: JsonFloat,
  size: JsonFloat,
  side: Tick['side'],
  source: Tick['source'],
];

/** A trade-less minute as minutesJsonSql sends it. */
type MinuteRow = [
  symbol: MarketSymbol,
  bucket: JsonFloat,
  open: JsonFloat,
  high: JsonFloat,
  low: JsonFloat,
  close: JsonFloat,
  volume: JsonFloat,
];

interface Minute {
  symbol: MarketSymbol;
  bar: Bar;
}

/** One raw read: a page of raw trades, and maybe the trade-less minutes of the time it spans. */
interface RawLoad {
  trades: Tick[];
  /** Minutes with bucket in [from, limit], at most a load; read when the frontier was to be `from`. */
  minutes: { from: number; limit: number; rows: Minute[] } | undefined;
}

export function storedHistory(options: StoredHistoryOptions): HistorySource {
  const pageTrades = positiveCount('pageTrades', options.pageTrades ?? DEFAULT_PAGE_TRADES);
  // Four trades a minute: a load of minutes expands to at most about one page.
  const pageMinutes = Math.max(1, Math.floor(pageTrades / EXPANDED_TRADE_OFFSETS_MS.length));
  const sequelize = options.repository.sequelize;
  const log = options.logger.child({ component: 'history-stored' });

  /**
   * The last row of a multi-statement query (the settings, then one SELECT): one round trip,
   * where bind parameters would need the extended protocol and a transaction, four. Sequelize's
   * replacements inline and escape the values; floats go as strings cast to float8, so every
   * double (Infinity too) arrives exactly.
   */
  async function selectLast<T>(sql: string, replacements: Record<string, unknown>): Promise<T> {
    const [rows] = await sequelize.query(sql, { replacements });
    return rows[rows.length - 1] as T;
  }

  const toMinutes = (rows: MinuteRow[] | null): Minute[] =>
    (rows ?? []).map((r) => ({
      symbol: r[0],
      bar: {
        time: float(r[1]),
        open: float(r[2]),
        high: float(r[3]),
        low: float(r[4]),
        close: float(r[5]),
        volume: float(r[6]),
      },
    }));

  async function* pages(
    range: ReplayRange,
    from: EpochMs,
    signal: AbortSignal,
  ): AsyncGenerator<readonly Tick[]> {
    const symbols = [...new Set(range.symbols)];
    const start = Math.max(range.from, from);
    const end = range.to;
    if (symbols.length === 0 || start >= end || signal.aborted) return;
    // [keyed][with minutes]
    const rawSql = [false, true].map((keyed) =>
      [false, true].map((minutes) => rawPageSql(symbols.length, keyed, minutes)),
    );
    const common = {
      symbols,
      ...Object.fromEntries(symbols.map((s, i) => [`symbol${i + 1}`, s])),
      end: String(end),
      pageTrades,
      pageMinutes,
    };

    const counts = { pages: 0, trades: 0, rawTrades: 0, expandedMinutes: 0, zeroVolumeMinutes: 0 };
    const startedMs = performance.now();
    let ended: string | undefined;

    // Raw stream: the fetched page, the key of its last row, and the read of the page after it,
    // started as soon as that key is known so the database works while this page is merged and
    // published (at most two raw pages in memory).
    let raw: Tick[] = [];
    let rawAt = 0;
    let rawAfter: ReplayKey | undefined;
    let rawDone = false;
    let rawNext: Promise<RawLoad> | undefined;
    // Minute stream: every trade-less minute with bucket < frontier, or = frontier and symbol
    // <= frontierSymbol, has been expanded into `pending`. Minutes before start's minute have no
    // trade at or after start.
    const pending = new MinHeap<Tick>(compareReplay);
    let frontier: number = floorBucket(start, '1m');
    let frontierSymbol: MarketSymbol | undefined;

    /**
     * Nothing past the newest raw trade fetched can be emitted before the next raw page, so a
     * minutes query stops there: each covers at most the span of one raw page. rawPageSql
     * computes the same in SQL.
     */
    const minutesLimit = (trades: readonly Tick[]): number => {
      const newest = trades[trades.length - 1];
      return trades.length < pageTrades || !newest ? end - 1 : newest.ts;
    };

    /**
     * The raw page after `after` (or from start), and with it the minutes from `minutesFrom`
     * (where the frontier will then be, all going well) to the limit that page sets.
     */
    const readRaw = async (
      after: ReplayKey | undefined,
      minutesFrom: number | undefined,
    ): Promise<RawLoad> => {
      const minutes = minutesFrom !== undefined && minutesFrom < end;
      const result = await selectLast<{
        page: RawRow[] | null;
        minutes_limit: number;
        minutes?: MinuteRow[] | null;
      }>(rawSql[after ? 1 : 0]![minutes ? 1 : 0]!, {
        ...common,
        ...(after
          ? { from: String(after.ts), afterId: after.id, afterSymbol: after.symbol }
          : { from: String(start) }),
        ...(minutes ? { minutesFrom: String(minutesFrom) } : {}),
      });
      // Exactly what Repository.readTrades returns for a row.
      const trades: Tick[] = (result.page ?? []).map((r) => ({
        v: 1,
        symbol: symbols[r[0] - 1]!,
        ts: float(r[1]),
        price: float(r[3]),
        size: float(r[4]),
        side: r[5],
        id: r[2],
        source: r[6],
      }));
      return {
        trades,
        minutes: minutes
          ? {
              from: minutesFrom,
              limit: result.minutes_limit,
              rows: toMinutes(result.minutes ?? null),
            }
          : undefined,
      };
    };

    /** Expands a load of minutes read up to `limit` and moves the frontier past them. */
    const addMinutes = (rows: readonly Minute[], limit: number): void => {
      for (const { symbol, bar } of rows) {
        counts.expandedMinutes++;
        if (hasNoSplittableVolume(bar)) counts.zeroVolumeMinutes++;
        for (const trade of expandMinute(symbol, bar)) {
          if (trade.ts >= start && trade.ts < end) pending.push(trade);
        }
      }
      const last = rows[rows.length - 1];
      if (rows.length === pageMinutes && last) {
        // Maybe more at this bucket (other symbols) or later, up to `limit`.
        frontier = last.bar.time;
        frontierSymbol = last.symbol;
      } else {
        frontier = limit + 1;
        frontierSymbol = undefined;
      }
    };

    const fetchRaw = async (): Promise<void> => {
      const load = await (rawNext ?? readRaw(rawAfter, frontierSymbol ? undefined : frontier));
      rawNext = undefined;
      raw = load.trades;
      rawAt = 0;
      rawAfter = raw[raw.length - 1] ?? rawAfter;
      rawDone = raw.length < pageTrades;
      counts.rawTrades += raw.length;
      // Loading minutes early changes nothing emitted, only when they are read; minutes read for
      // another frontier (the last load stopped at its size) are left to loadMinutes.
      if (load.minutes && frontier === load.minutes.from && frontierSymbol === undefined) {
        addMinutes(load.minutes.rows, load.minutes.limit);
      }
      if (!rawDone && !signal.aborted) {
        rawNext = readRaw(rawAfter, minutesLimit(raw) + 1);
        // Its failure is seen where it is awaited; a replay stopped before then never sees it.
        rawNext.catch(() => undefined);
      }
    };

    const loadMinutes = async (): Promise<void> => {
      const limit = minutesLimit(raw);
      const result = await selectLast<{ minutes: MinuteRow[] | null }>(
        frontierSymbol === undefined ? MINUTES_FIRST_SQL : MINUTES_NEXT_SQL,
        {
          ...common,
          minutesFrom: String(frontier),
          minutesLimit: String(limit),
          ...(frontierSymbol === undefined ? {} : { minutesAfter: frontierSymbol }),
        },
      );
      addMinutes(toMinutes(result.minutes), limit);
    };

    try {
      let page: Tick[] = [];
      for (;;) {
        if (signal.aborted) return;
        if (rawAt >= raw.length && !rawDone) {
          await fetchRaw();
          continue;
        }
        const nextRaw = raw[rawAt];
        const nextPending = pending.peek();
        const next =
          nextPending && (!nextRaw || compareReplay(nextPending, nextRaw) < 0)
            ? nextPending
            : nextRaw;
        // A minute not yet loaded may hold an earlier trade: load until the frontier passes it.
        if (frontier < end && (next === undefined || next.ts >= frontier)) {
          await loadMinutes();
          continue;
        }
        if (next === undefined) break;
        if (next === nextRaw) rawAt++;
        else pending.pop();
        page.push(next);
        if (page.length >= pageTrades) {
          counts.pages++;
          counts.trades += page.length;
          yield page;
          page = [];
        }
      }
      if (page.length > 0 && !signal.aborted) {
        counts.pages++;
        counts.trades += page.length;
        yield page;
      }
      ended = 'end-of-range';
    } catch (err) {
      ended = 'failed';
      throw err;
    } finally {
      log.info('stored history read', {
        symbols,
        from: start,
        to: end,
        ended: ended ?? (signal.aborted ? 'aborted' : 'stopped'),
        ...counts,
        durationMs: Math.round(performance.now() - startedMs),
      });
    }
  }

  return { kind: 'stored', pages };
}
