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
 * The next raw trades after a key ($4 ts, $5 id, $6 symbol) or from $4 on (first page), before
 * $2. One index scan per symbol on the primary key (symbol, ts, trade_id), each stopping after $3
 * rows: ORDER BY ts uses the index and only ties within a millisecond are sorted by id in "C"
 * order (an incremental sort), so a page reads at most $3 rows per symbol whatever the range.
 * Keys are bound as float8, so a stored time with sub-millisecond digits still compares equal.
 */
const rawPageSql = (keyed: boolean): string => `
SELECT t.symbol, ${MS('t.ts')} AS ts, t.trade_id, t.price, t.size, t.side, t.source
FROM unnest($1::text[]) AS s(symbol)
CROSS JOIN LATERAL (
  SELECT k.symbol, k.ts, k.trade_id, k.price, k.size, k.side, k.source FROM ticks k
  WHERE k.symbol = s.symbol
    AND k.ts >= ${FROM_MS('$4::float8')} AND k.ts < ${FROM_MS('$2::float8')}
    ${
      keyed
        ? `AND (k.ts > ${FROM_MS('$4::float8')}
         OR (k.trade_id COLLATE "C", k.symbol COLLATE "C") > ($5::text COLLATE "C", $6::text COLLATE "C"))`
        : ''
    }
  ORDER BY k.ts, k.trade_id COLLATE "C"
  LIMIT $3
) t
ORDER BY t.ts, t.trade_id COLLATE "C", t.symbol COLLATE "C"
LIMIT $3`;
const RAW_FIRST_PAGE_SQL = rawPageSql(false);
const RAW_NEXT_PAGE_SQL = rawPageSql(true);

/**
 * The next 1-minute bars without raw trades with bucket in [$2, $3] (after symbol $5 at bucket
 * $2 when given), at most $4. Per symbol an index scan on the bars_1m primary key in bucket
 * order with one ticks primary-key probe per minute, stopping after $4 rows.
 */
const tradelessMinutesSql = (keyed: boolean): string => `
SELECT b.symbol, ${MS('b.bucket')} AS bucket, b.open, b.high, b.low, b.close, b.volume
FROM unnest($1::text[]) AS s(symbol)
CROSS JOIN LATERAL (
  SELECT m.symbol, m.bucket, m.open, m.high, m.low, m.close, m.volume FROM bars_1m m
  WHERE m.symbol = s.symbol AND m.span_min = 1
    AND m.bucket >= ${FROM_MS('$2::float8')} AND m.bucket <= ${FROM_MS('$3::float8')}
    ${keyed ? `AND (m.bucket > ${FROM_MS('$2::float8')} OR m.symbol COLLATE "C" > $5::text COLLATE "C")` : ''}
    AND NOT EXISTS (
      SELECT 1 FROM ticks k
      WHERE k.symbol = m.symbol AND k.ts >= m.bucket AND k.ts < m.bucket + INTERVAL '1 minute')
  ORDER BY m.bucket
  LIMIT $4
) b
ORDER BY b.bucket, b.symbol COLLATE "C"
LIMIT $4`;
const MINUTES_FIRST_SQL = tradelessMinutesSql(false);
const MINUTES_NEXT_SQL = tradelessMinutesSql(true);

interface RawRow {
  symbol: MarketSymbol;
  ts: number;
  trade_id: string;
  price: number;
  size: number;
  side: Tick['side'];
  source: Tick['source'];
}

interface MinuteRow extends Omit<Bar, 'time'> {
  symbol: MarketSymbol;
  bucket: number;
}

export function storedHistory(options: StoredHistoryOptions): HistorySource {
  const pageTrades = positiveCount('pageTrades', options.pageTrades ?? DEFAULT_PAGE_TRADES);
  // Four trades a minute: a load of minutes expands to at most about one page.
  const pageMinutes = Math.max(1, Math.floor(pageTrades / EXPANDED_TRADE_OFFSETS_MS.length));
  const sequelize = options.repository.sequelize;
  const log = options.logger.child({ component: 'history-stored' });

  async function select<T>(sql: string, bind: unknown[]): Promise<T[]> {
    const [rows] = await sequelize.query(sql, { bind });
    return rows as T[];
  }

  async function* pages(
    range: ReplayRange,
    from: EpochMs,
    signal: AbortSignal,
  ): AsyncGenerator<readonly Tick[]> {
    const symbols = [...new Set(range.symbols)];
    const start = Math.max(range.from, from);
    const end = range.to;
    if (symbols.length === 0 || start >= end || signal.aborted) return;

    const counts = { pages: 0, trades: 0, rawTrades: 0, expandedMinutes: 0, zeroVolumeMinutes: 0 };
    const startedMs = performance.now();
    let ended: string | undefined;

    // Raw stream: the fetched page and the key of its last row.
    let raw: Tick[] = [];
    let rawAt = 0;
    let rawAfter: ReplayKey | undefined;
    let rawDone = false;
    // Minute stream: every trade-less minute with bucket < frontier, or = frontier and symbol
    // <= frontierSymbol, has been expanded into `pending`. Minutes before start's minute have no
    // trade at or after start.
    const pending = new MinHeap<Tick>(compareReplay);
    let frontier: number = floorBucket(start, '1m');
    let frontierSymbol: MarketSymbol | undefined;

    const fetchRaw = async (): Promise<void> => {
      const rows = await select<RawRow>(
        rawAfter ? RAW_NEXT_PAGE_SQL : RAW_FIRST_PAGE_SQL,
        rawAfter
          ? [symbols, end, pageTrades, rawAfter.ts, rawAfter.id, rawAfter.symbol]
          : [symbols, end, pageTrades, start],
      );
      // Exactly what Repository.readTrades returns for a row.
      raw = rows.map((r) => ({
        v: 1,
        symbol: r.symbol,
        ts: r.ts,
        price: r.price,
        size: r.size,
        side: r.side,
        id: r.trade_id,
        source: r.source,
      }));
      rawAt = 0;
      rawAfter = raw[raw.length - 1] ?? rawAfter;
      rawDone = raw.length < pageTrades;
      counts.rawTrades += raw.length;
    };

    const loadMinutes = async (): Promise<void> => {
      // Nothing past the newest raw trade fetched can be emitted before the next raw page, so
      // the scan stops there: each query covers at most the span of one raw page.
      const newestRaw = raw[raw.length - 1];
      const limit = rawDone || !newestRaw ? end - 1 : newestRaw.ts;
      const rows = await select<MinuteRow>(
        frontierSymbol === undefined ? MINUTES_FIRST_SQL : MINUTES_NEXT_SQL,
        frontierSymbol === undefined
          ? [symbols, frontier, limit, pageMinutes]
          : [symbols, frontier, limit, pageMinutes, frontierSymbol],
      );
      for (const row of rows) {
        const bar: Bar = { ...row, time: row.bucket };
        counts.expandedMinutes++;
        if (hasNoSplittableVolume(bar)) counts.zeroVolumeMinutes++;
        for (const trade of expandMinute(row.symbol, bar)) {
          if (trade.ts >= start && trade.ts < end) pending.push(trade);
        }
      }
      const last = rows[rows.length - 1];
      if (rows.length === pageMinutes && last) {
        // Maybe more at this bucket (other symbols) or later, up to `limit`.
        frontier = last.bucket;
        frontierSymbol = last.symbol;
      } else {
        frontier = limit + 1;
        frontierSymbol = undefined;
      }
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
