import type {
  Bar,
  CandleSpan,
  Clock,
  EpochMs,
  Interval,
  MarketSymbol,
  MinuteState,
  MinuteTrade,
  Tick,
} from '@candlestream/core';
import {
  AppError,
  CANDLE_SPAN_BOUNDARY,
  CANDLE_SPANS,
  ExactSum,
  mergeMinute,
  barProblem,
  ceilBucket,
  floorBucket,
  INTERVAL_MS,
  isBucketAligned,
  MINUTE_MS,
  rollupBars,
  systemClock,
} from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { Transaction } from 'sequelize';
import { QueryTypes, Sequelize } from 'sequelize';
import type { DbTarget } from './connection.js';
import { dbTimeouts, pgTimeoutOptions, searchPathSql } from './connection.js';
import type { Backend } from './migrate.js';
import { defineModels } from './models.js';
import {
  bucketEpochMsSql as BUCKET_MS,
  epochMsSql as MS,
  fromEpochMsSql as FROM_MS,
} from './sql-time.js';

/** Relations that hold each interval directly; 30m and 1w are rolled up from 15m and 1d. */
const RELATION: Partial<Record<Interval, string>> = {
  '1m': 'ohlcv_1m',
  '5m': 'ohlcv_5m',
  '15m': 'ohlcv_15m',
  '1h': 'ohlcv_1h',
  '4h': 'ohlcv_4h',
  '1d': 'ohlcv_1d',
};
const ROLLED_UP: Partial<Record<Interval, Interval>> = { '30m': '15m', '1w': '1d' };
/** Continuous aggregates in dependency order: each is built on the one before. */
const AGGREGATES: readonly Interval[] = ['5m', '15m', '1h', '4h', '1d'];
/**
 * Where plain PostgreSQL's readBars aggregates an interval from, when no relation holds it
 * directly: the rows of a finer table and which of them count (migration 0008: an hour or day
 * candle is one bars_1m row covering its period, so only the intervals it can answer see it).
 * 1h and 1d are tables there (migration 0009) and are read like TimescaleDB's aggregates.
 */
const PG_SOURCE: Partial<Record<Interval, { table: string; filter: string }>> = {
  '5m': { table: 'bars_1m', filter: 'span_min = 1' },
  '15m': { table: 'bars_1m', filter: 'span_min = 1' },
  '4h': { table: 'bars_1h', filter: 'TRUE' },
};
const spanMinutes = (span: CandleSpan): number => INTERVAL_MS[span] / MINUTE_MS;
const PG_INTERVAL: Record<Interval, string> = {
  '1m': '1 minute',
  '5m': '5 minutes',
  '15m': '15 minutes',
  '30m': '30 minutes',
  '1h': '1 hour',
  '4h': '4 hours',
  '1d': '1 day',
  '1w': '7 days',
};
/**
 * Rows per INSERT statement; a batch larger than this is written as several statements in one
 * transaction. It keeps each protocol message near 40 KB: pglite-socket 0.0.20 hands every TCP
 * chunk to PGlite as it arrives, and a message split across chunks traps PGlite's WASM.
 */
export const MAX_ROWS_PER_STATEMENT = 400;

/** Column arrays for the `unnest($1..$7)` of a trades INSERT, in `ticks` column order. */
export function tickColumns(ticks: readonly Tick[]): unknown[][] {
  return [
    ticks.map((t) => t.symbol),
    ticks.map((t) => t.ts),
    ticks.map((t) => t.id),
    ticks.map((t) => t.price),
    ticks.map((t) => t.size),
    ticks.map((t) => t.side),
    ticks.map((t) => t.source),
  ];
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Later than any bucket we store (2100-01-01): an open end for range queries. */
const MAX_STORED_TS_MS = Date.UTC(2100, 0, 1);
/** pg_advisory_xact_lock namespace for writers of one symbol's 1-minute series. */
const SERIES_LOCK_PREFIX = 'candlestream:bars_1m:';

const INSERT_TICKS_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::text[])
    AS i(symbol, ms, trade_id, price, size, side, source)
)
INSERT INTO ticks (symbol, ts, trade_id, price, size, side, source)
SELECT symbol, ${FROM_MS('ms')}, trade_id, price, size, side, source FROM input
ON CONFLICT DO NOTHING
RETURNING symbol, ${MS('ts')} AS ts, trade_id AS id, price, size`;

/** The stored state of the given minutes (symbol and bucket arrays), those that have a row. */
const READ_MINUTES_SQL = `
SELECT b.symbol, ${MS('b.bucket')} AS bucket, b.origin, b.open, b.high, b.low, b.close, b.volume,
       b.trades, b.open_ms::float8 AS open_ms, b.open_id, b.close_ms::float8 AS close_ms, b.close_id,
       b.volume_parts
FROM unnest($1::text[], $2::bigint[]) AS k(symbol, ms)
JOIN bars_1m b ON b.symbol = k.symbol AND b.bucket = ${FROM_MS('k.ms')}`;

/** Writes tick-derived minutes with everything a later merge needs (migration 0005). */
const UPSERT_MINUTES_SQL = `
INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, origin, source, updated_at,
                     open_ms, open_id, close_ms, close_id, volume_parts)
SELECT symbol, ${FROM_MS('ms')}, o, h, l, c, v, n, 'ticks', NULL, now(), om, oi, cm, ci, vp::float8[]
FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[],
            $8::int[], $9::bigint[], $10::text[], $11::bigint[], $12::text[], $13::text[])
  AS u(symbol, ms, o, h, l, c, v, n, om, oi, cm, ci, vp)
ON CONFLICT (symbol, bucket) DO UPDATE SET
  open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
  volume = EXCLUDED.volume, trades = EXCLUDED.trades, origin = 'ticks', source = NULL, span_min = 1, updated_at = now(),
  open_ms = EXCLUDED.open_ms, open_id = EXCLUDED.open_id, close_ms = EXCLUDED.close_ms,
  close_id = EXCLUDED.close_id, volume_parts = EXCLUDED.volume_parts`;

/**
 * Candles fill periods without trades and never replace a tick-derived minute. An hour or day
 * candle (span_min 60 or 1440) is written only where its period has no finer row ($9: its
 * minutes); a 1-minute candle's statement skips that probe.
 */
const upsertCandlesSql = (coarse: boolean): string => `
INSERT INTO bars_1m (symbol, bucket, open, high, low, close, volume, trades, origin, source, span_min, updated_at)
SELECT $1, ${FROM_MS('ms')}, o, h, l, c, v, NULL, 'candles', $8, $9::smallint, now()
FROM unnest($2::bigint[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[]) AS u(ms, o, h, l, c, v)
${
  coarse
    ? `WHERE NOT EXISTS (
  SELECT 1 FROM bars_1m f
  WHERE f.symbol = $1 AND f.span_min < $9::smallint
    AND f.bucket >= ${FROM_MS('u.ms')} AND f.bucket < ${FROM_MS(`(u.ms + $9::bigint * ${MINUTE_MS})`)})`
    : ''
}
ON CONFLICT (symbol, bucket) DO UPDATE SET
  open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
  volume = EXCLUDED.volume, source = EXCLUDED.source, span_min = EXCLUDED.span_min, updated_at = now()
WHERE bars_1m.origin = 'candles' AND bars_1m.span_min >= EXCLUDED.span_min
RETURNING 1`;
const UPSERT_CANDLES_SQL = upsertCandlesSql(false);
const UPSERT_COARSE_CANDLES_SQL = upsertCandlesSql(true);

/**
 * Removes the hour and day candles that cover rows about to be written finer ($1..$3: symbol,
 * bucket, span_min of each coarse row; $4, $5 bound the buckets so TimescaleDB excludes chunks).
 */
const DROP_COARSER_SQL = `
DELETE FROM bars_1m b
USING unnest($1::text[], $2::bigint[], $3::int[]) AS k(symbol, ms, span)
WHERE b.symbol = k.symbol AND b.bucket = ${FROM_MS('k.ms')} AND b.span_min = k.span
  AND b.bucket >= ${FROM_MS('$4::bigint')} AND b.bucket <= ${FROM_MS('$5::bigint')}`;

/**
 * Minute rows per upsert: a row carries 13 columns (about 250 bytes), so this keeps a statement
 * under MAX_ROWS_PER_STATEMENT's 40 KB for pglite-socket.
 */
const MAX_MINUTES_PER_STATEMENT = 150;
/** rebuildMinutes reads and writes this much of a symbol's history per transaction. */
const REBUILD_PAGE_MS = 3_600_000;

const minuteKey = (symbol: string, bucket: EpochMs): string => `${symbol} ${bucket}`;

/** Trades grouped by (symbol, minute), in arrival order within each minute. */
function byMinute<T extends Pick<Tick, 'symbol' | 'ts'>>(
  trades: Iterable<T>,
  into = new Map<string, { symbol: MarketSymbol; bucket: EpochMs; trades: T[] }>(),
): Map<string, { symbol: MarketSymbol; bucket: EpochMs; trades: T[] }> {
  for (const t of trades) {
    const bucket = floorBucket(t.ts, '1m');
    const key = minuteKey(t.symbol, bucket);
    let minute = into.get(key);
    if (!minute) into.set(key, (minute = { symbol: t.symbol, bucket, trades: [] }));
    minute.trades.push(t);
  }
  return into;
}

/** A trade INSERT stored (RETURNING): what its minute's merge needs. */
interface NewTrade extends MinuteTrade {
  symbol: MarketSymbol;
}

interface MinuteRow {
  symbol: MarketSymbol;
  bucket: EpochMs;
  origin: 'ticks' | 'candles';
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  trades: number | null;
  open_ms: number | null;
  open_id: string | null;
  close_ms: number | null;
  close_id: string | null;
  volume_parts: number[] | null;
}

export interface TouchedMinute {
  symbol: MarketSymbol;
  bucket: EpochMs;
  /** Trades newly stored in that minute by this call. */
  trades: number;
}

export interface InsertTradesResult {
  /** Trades stored; re-sent ones are not counted. */
  inserted: number;
  touched: TouchedMinute[];
}

export interface CoveredRange {
  from: EpochMs;
  /** Exclusive. */
  to: EpochMs;
}

export interface RepositoryOptions extends DbTarget {
  logger: Logger;
  /** Pool size; 1 for a server that takes one connection at a time (PGlite). */
  poolMax?: number;
  /** Decides which buckets are still open (never materialized); SimulatedClock in tests. */
  clock?: Clock;
}

interface BarRow {
  bucket: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

function toBar(row: BarRow): Bar {
  return {
    time: row.bucket,
    open: row.open,
    high: row.high,
    low: row.low,
    close: row.close,
    volume: row.volume,
  };
}

/**
 * Trades and bars in PostgreSQL or TimescaleDB: the same answers on both (docs/STORAGE.md).
 * Writers of one symbol serialise on an advisory lock, so two consumers storing trades of the
 * same minute cannot each recompute it without the other's trade.
 */
export class Repository {
  readonly sequelize: Sequelize;
  readonly models: ReturnType<typeof defineModels>;
  #backend: Backend | undefined;
  readonly #log: Logger;
  readonly #clock: Clock;
  /** How many arguments this server's refresh_continuous_aggregate takes (read once). */
  #refreshArgs: number | undefined;

  constructor(options: RepositoryOptions) {
    this.#clock = options.clock ?? systemClock;
    const schema = options.schema;
    this.#log = options.logger.child({ component: 'repository' });
    this.sequelize = new Sequelize(options.url, {
      dialect: 'postgres',
      logging: false,
      pool: {
        max: options.poolMax ?? 10,
        min: 0,
        idle: 1_000,
        acquire: dbTimeouts(options).acquireTimeoutMs,
      },
      // Every query and connect bounded (connection.ts): a silent server is an error, not a hang.
      dialectOptions: pgTimeoutOptions(dbTimeouts(options)),
      hooks: schema
        ? {
            afterConnect: async (connection) => {
              await (connection as { query(sql: string): Promise<unknown> }).query(
                searchPathSql(schema),
              );
            },
          }
        : {},
    });
    this.models = defineModels(this.sequelize);
  }

  /** The backend the migrations chose for this database. */
  async backend(): Promise<Backend> {
    if (!this.#backend) {
      const rows = await this.sequelize
        .query<{ backend: Backend }>(
          'SELECT backend FROM schema_migrations ORDER BY version DESC LIMIT 1',
          { type: QueryTypes.SELECT },
        )
        .catch((err: unknown) => {
          // 42P01 undefined_table: not a database this project has migrated.
          if ((err as { parent?: { code?: string } }).parent?.code === '42P01') return [];
          throw err;
        });
      if (!rows[0])
        throw new AppError(
          'UNAVAILABLE',
          'the database has no migrations applied; run pnpm migrate',
        );
      this.#backend = rows[0].backend;
    }
    return this.#backend;
  }

  async close(): Promise<void> {
    await this.sequelize.close();
  }

  async #lockSeries(symbols: Iterable<string>, transaction: Transaction): Promise<void> {
    // Sorted, so two writers of overlapping symbol sets always lock in the same order; one
    // statement for all of them (a round trip per symbol was most of a 1,000-symbol batch's
    // write). unnest yields the array in order, and the aggregate takes each lock as it comes.
    const keys = [...new Set(symbols)].sort().map((symbol) => SERIES_LOCK_PREFIX + symbol);
    if (keys.length === 0) return;
    await this.sequelize.query(
      'SELECT count(pg_advisory_xact_lock(hashtext(k))) FROM unnest($1::text[]) AS u(k)',
      { bind: [keys], transaction },
    );
  }

  /**
   * Stores trades (a re-sent trade is a no-op) and merges the new ones into the minutes they
   * landed in, then brings TimescaleDB's aggregates up to date over what changed.
   *
   * Only trades new to `ticks` are merged, into the minute's stored state (migration 0005), so
   * the result never depends on the minute's earlier trades still being readable: compressed,
   * dropped or never stored here, the merge is the same as a rebuild from all of them.
   */
  async insertTrades(ticks: readonly Tick[]): Promise<InsertTradesResult> {
    if (ticks.length === 0) return { inserted: 0, touched: [] };
    const started = Date.now();
    const touched = await this.sequelize.transaction(async (transaction) => {
      await this.#lockSeries(
        ticks.map((t) => t.symbol),
        transaction,
      );
      const fresh = new Map<
        string,
        { symbol: MarketSymbol; bucket: EpochMs; trades: NewTrade[] }
      >();
      for (const part of chunks(ticks, MAX_ROWS_PER_STATEMENT)) {
        const rows = await this.sequelize.query<NewTrade>(INSERT_TICKS_SQL, {
          bind: tickColumns(part),
          type: QueryTypes.SELECT,
          transaction,
        });
        byMinute(rows, fresh);
      }
      const minutes = [...fresh.values()];
      const stored = await this.#readMinuteStates(minutes, transaction);
      await this.#writeMinuteStates(
        minutes.map((m) => ({
          symbol: m.symbol,
          bucket: m.bucket,
          state: mergeMinute(stored.get(minuteKey(m.symbol, m.bucket)), m.trades)!,
        })),
        transaction,
      );
      return minutes.map((m) => ({ symbol: m.symbol, bucket: m.bucket, trades: m.trades.length }));
    });
    // Every input minute, not only the new ones: a retry after a failed refresh finds its
    // trades stored already and must still refresh. A refresh with nothing to do is cheap.
    let from = Infinity;
    let to = -Infinity;
    for (const t of ticks) {
      if (t.ts < from) from = t.ts;
      if (t.ts > to) to = t.ts;
    }
    await this.refreshAggregates(floorBucket(from, '1m'), floorBucket(to, '1m') + MINUTE_MS);
    const inserted = touched.reduce((n, m) => n + m.trades, 0);
    this.#log.debug('trades stored', {
      received: ticks.length,
      inserted,
      minutes: touched.length,
      durationMs: Date.now() - started,
    });
    return { inserted, touched };
  }

  /**
   * The mergeable state of each given minute that has a tick-derived row. Candle minutes have
   * none: trades replace a candle rather than add to it.
   */
  async #readMinuteStates(
    minutes: readonly { symbol: MarketSymbol; bucket: EpochMs }[],
    transaction: Transaction,
  ): Promise<Map<string, MinuteState>> {
    const out = new Map<string, MinuteState>();
    for (const part of chunks(minutes, MAX_ROWS_PER_STATEMENT)) {
      const rows = await this.sequelize.query<MinuteRow>(READ_MINUTES_SQL, {
        bind: [part.map((m) => m.symbol), part.map((m) => m.bucket)],
        type: QueryTypes.SELECT,
        transaction,
      });
      for (const row of rows) {
        if (row.origin !== 'ticks') continue;
        out.set(minuteKey(row.symbol, row.bucket), {
          open: row.open,
          high: row.high,
          low: row.low,
          close: row.close,
          volume: ExactSum.of(row.volume_parts ?? [row.volume]),
          trades: row.trades ?? 0,
          openKey:
            row.open_ms == null || row.open_id == null
              ? null
              : { ts: row.open_ms, id: row.open_id },
          closeKey:
            row.close_ms == null || row.close_id == null
              ? null
              : { ts: row.close_ms, id: row.close_id },
        });
      }
    }
    return out;
  }

  async #writeMinuteStates(
    minutes: readonly { symbol: MarketSymbol; bucket: EpochMs; state: MinuteState }[],
    transaction: Transaction,
  ): Promise<void> {
    await this.#dropCoarser(minutes, '1m', transaction);
    for (const part of chunks(minutes, MAX_MINUTES_PER_STATEMENT)) {
      const states = part.map((m) => m.state);
      await this.sequelize.query(UPSERT_MINUTES_SQL, {
        bind: [
          part.map((m) => m.symbol),
          part.map((m) => m.bucket),
          states.map((m) => m.open),
          states.map((m) => m.high),
          states.map((m) => m.low),
          states.map((m) => m.close),
          states.map((m) => m.volume.value()),
          states.map((m) => m.trades),
          states.map((m) => m.openKey?.ts ?? null),
          states.map((m) => m.openKey?.id ?? null),
          states.map((m) => m.closeKey?.ts ?? null),
          states.map((m) => m.closeKey?.id ?? null),
          // Array literals: each minute has its own number of partials, which a 2-D bind cannot hold.
          states.map((m) => `{${m.volume.partials().map(String).join(',')}}`),
        ],
        transaction,
      });
    }
  }

  /**
   * Deletes the hour and day candles covering rows about to be written at `span` (finer wins:
   * a trade's minute or a 1-minute candle replaces the hour candle standing for its hour, which
   * would otherwise be counted beside it). One statement; nothing to delete is an index probe.
   */
  async #dropCoarser(
    rows: readonly { symbol: MarketSymbol; bucket: EpochMs }[],
    span: CandleSpan,
    transaction: Transaction,
  ): Promise<void> {
    const coarser = CANDLE_SPANS.filter((s) => INTERVAL_MS[s] > INTERVAL_MS[span]);
    const keys = new Map<string, { symbol: MarketSymbol; ms: EpochMs; span: number }>();
    for (const row of rows) {
      for (const s of coarser) {
        const ms = floorBucket(row.bucket, s);
        keys.set(`${row.symbol} ${ms} ${s}`, { symbol: row.symbol, ms, span: spanMinutes(s) });
      }
    }
    for (const part of chunks([...keys.values()], MAX_ROWS_PER_STATEMENT)) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const k of part) {
        lo = Math.min(lo, k.ms);
        hi = Math.max(hi, k.ms);
      }
      await this.sequelize.query(DROP_COARSER_SQL, {
        bind: [part.map((k) => k.symbol), part.map((k) => k.ms), part.map((k) => k.span), lo, hi],
        transaction,
      });
    }
  }

  /**
   * Rebuilds every minute of [from, to) for `symbol` from the trades stored in `ticks`, for
   * trades written there by other writers (a bulk COPY, psql) rather than through insertTrades;
   * `pnpm rebuild` runs it. Minutes whose raw trades are all gone keep their stored bar.
   * Idempotent; works an hour at a time, so memory stays flat over any range.
   */
  async rebuildMinutes(
    symbol: MarketSymbol,
    from: EpochMs,
    to: EpochMs,
    onProgress?: (progress: { done: EpochMs; minutes: number; trades: number }) => void,
  ): Promise<{ minutes: number; trades: number }> {
    let minutes = 0;
    let trades = 0;
    const start = floorBucket(from, '1m');
    const end = ceilBucket(to, '1m');
    for (let pageStart = start; pageStart < end; pageStart += REBUILD_PAGE_MS) {
      const pageEnd = Math.min(end, pageStart + REBUILD_PAGE_MS);
      await this.sequelize.transaction(async (transaction) => {
        await this.#lockSeries([symbol], transaction);
        const stored = await this.readTrades(symbol, pageStart, pageEnd, transaction);
        const rebuilt = [...byMinute(stored).values()];
        await this.#writeMinuteStates(
          rebuilt.map((m) => ({ ...m, state: mergeMinute(undefined, m.trades)! })),
          transaction,
        );
        minutes += rebuilt.length;
        trades += stored.length;
      });
      // Page by page, so each refresh stays well inside the statement timeout.
      await this.refreshAggregates(pageStart, pageEnd);
      onProgress?.({ done: pageEnd, minutes, trades });
    }
    return { minutes, trades };
  }

  /**
   * Stores imported or backfilled candles of one symbol, all of one `span` (default 1m). A
   * minute that already has trades keeps its tick-derived bar; the candle is skipped, never added
   * to it. An hour or day candle (a source that kept only those there) is one row covering its
   * period, skipped where the period has any finer row; a finer candle replaces the coarser one
   * covering it (docs/STORAGE.md). Writing the same candles again changes nothing.
   */
  async upsertCandles(
    symbol: MarketSymbol,
    bars: readonly Bar[],
    source: string,
    span: CandleSpan = '1m',
  ): Promise<{ written: number; skipped: number }> {
    for (const bar of bars) {
      const problem = barProblem(bar);
      if (!isBucketAligned(bar.time, span) || problem) {
        throw new AppError(
          'INVALID_ARGUMENT',
          `candle at ${new Date(bar.time).toISOString()} ${problem ?? `is not on ${CANDLE_SPAN_BOUNDARY[span]} boundary`}`,
        );
      }
    }
    if (bars.length === 0) return { written: 0, skipped: 0 };
    const written = await this.sequelize.transaction(async (transaction) => {
      await this.#lockSeries([symbol], transaction);
      await this.#dropCoarser(
        bars.map((b) => ({ symbol, bucket: b.time })),
        span,
        transaction,
      );
      let count = 0;
      for (const part of chunks(bars, MAX_ROWS_PER_STATEMENT)) {
        const rows = await this.sequelize.query(
          span === '1m' ? UPSERT_CANDLES_SQL : UPSERT_COARSE_CANDLES_SQL,
          {
            bind: [
              symbol,
              part.map((b) => b.time),
              part.map((b) => b.open),
              part.map((b) => b.high),
              part.map((b) => b.low),
              part.map((b) => b.close),
              part.map((b) => b.volume),
              source,
              spanMinutes(span),
            ],
            type: QueryTypes.SELECT,
            transaction,
          },
        );
        count += rows.length;
      }
      return count;
    });
    return { written, skipped: bars.length - written };
  }

  /**
   * Brings TimescaleDB's continuous aggregates up to date over the closed buckets of [from, to)
   * after writes into them (late trades, imported candles). Buckets still open by the clock are
   * never materialized: real-time aggregation keeps showing them as trades arrive, which a
   * materialized bucket would not until its next refresh. A no-op on plain PostgreSQL, whose
   * views always read the base table.
   */
  async refreshAggregates(from: EpochMs, to: EpochMs): Promise<void> {
    if ((await this.backend()) !== 'timescaledb') return;
    const now = this.#clock.now();
    for (const interval of AGGREGATES) {
      const start = floorBucket(from, interval);
      const end = Math.min(
        ceilBucket(Math.max(to, from + 1), interval),
        floorBucket(now, interval),
      );
      if (end <= start) continue;
      // CALL cannot run in a transaction block; these are literals we built, not user input.
      await this.sequelize.query(
        `CALL refresh_continuous_aggregate('${RELATION[interval]}', '${new Date(start).toISOString()}', '${new Date(end).toISOString()}'${await this.#refreshOptions()})`,
      );
    }
  }

  /**
   * TimescaleDB 2.2x refreshes in batches planned from the invalidation log as it stood when the
   * call began, so on a cagg over a cagg it skipped ranges the lower refresh had just invalidated
   * (seen on 2.28.3: 5m refreshed, 15m kept the old bar). One atomic pass has no such plan.
   * Older versions have no options argument and always refresh in one pass.
   */
  async #refreshOptions(): Promise<string> {
    if (this.#refreshArgs === undefined) {
      const rows = await this.sequelize.query<{ args: number }>(
        "SELECT max(pronargs)::int AS args FROM pg_proc WHERE proname = 'refresh_continuous_aggregate'",
        { type: QueryTypes.SELECT },
      );
      this.#refreshArgs = rows[0]?.args ?? 3;
    }
    return this.#refreshArgs >= 5 ? `, false, '{"buckets_per_batch": 0}'` : '';
  }

  /** Bars of `symbol` whose open time is in [from, to), ascending. */
  async readBars(
    symbol: MarketSymbol,
    interval: Interval,
    from: EpochMs,
    to: EpochMs,
  ): Promise<Bar[]> {
    const finer = ROLLED_UP[interval];
    if (finer) {
      const bars = await this.readBars(
        symbol,
        finer,
        ceilBucket(from, interval),
        ceilBucket(to, interval),
      );
      return rollupBars(bars, finer, interval);
    }
    if (to <= from) return [];
    const source = (await this.backend()) === 'postgres' ? PG_SOURCE[interval] : undefined;
    let sql: string;
    if (!source) {
      // TimescaleDB's aggregates, and on plain PostgreSQL 1m, 1h and 1d, whose views are a table
      // each (bars_1m, bars_1h, bars_1d): a range scan on the primary key. ORDER BY names the
      // relation's column: a bare `bucket` would be the epoch-ms output column, which no index
      // holds, so every read would sort.
      sql = `SELECT ${BUCKET_MS('r.bucket')} AS bucket, r.open, r.high, r.low, r.close, r.volume
             FROM ${RELATION[interval]} r
             WHERE r.symbol = $1 AND r.bucket >= ${FROM_MS('$2::bigint')} AND r.bucket < ${FROM_MS('$3::bigint')}
             ORDER BY r.bucket`;
    } else {
      // Plain PostgreSQL's grouping views: a WHERE on their bucket is one on date_bin(bucket),
      // which no index holds, so the range goes on the source's primary key instead.
      const width = PG_INTERVAL[interval];
      sql = `SELECT ${BUCKET_MS(`date_bin(INTERVAL '${width}', bucket, TIMESTAMPTZ 'epoch')`)} AS bucket,
               (array_agg(open ORDER BY bucket))[1] AS open, max(high) AS high, min(low) AS low,
               (array_agg(close ORDER BY bucket DESC))[1] AS close, sum(volume) AS volume
             FROM ${source.table}
             WHERE symbol = $1 AND bucket >= ${FROM_MS('$2::bigint')} AND bucket < ${FROM_MS('$3::bigint')}
               AND ${source.filter}
             GROUP BY 1 ORDER BY 1`;
    }
    const rows = await this.sequelize.query<BarRow>(sql, {
      bind: [symbol, ceilBucket(from, interval), ceilBucket(to, interval)],
      type: QueryTypes.SELECT,
    });
    return rows.map(toBar);
  }

  /** The last `count` bars of `symbol` that open before `before` (default: all), ascending. */
  async lastBars(
    symbol: MarketSymbol,
    interval: Interval,
    count: number,
    before: EpochMs = MAX_STORED_TS_MS,
  ): Promise<Bar[]> {
    if (count <= 0) return [];
    const extent = await this.bucketExtent(symbol);
    if (!extent) return [];
    const width = INTERVAL_MS[interval];
    const end = Math.min(before, extent.last + width);
    // Widen the window until it holds `count` bars or reaches the start of the data: gaps make
    // the number of bars in a window unknowable up front.
    let span = count * width;
    for (;;) {
      const from = Math.max(extent.first - width, end - span);
      const bars = await this.readBars(symbol, interval, from, end);
      if (bars.length >= count || from <= extent.first - width) return bars.slice(-count);
      span *= 4;
    }
  }

  /** The oldest and newest 1-minute buckets of `symbol`, in one index lookup each. */
  async bucketExtent(symbol: MarketSymbol): Promise<{ first: EpochMs; last: EpochMs } | undefined> {
    const rows = await this.sequelize.query<{ first: number | null; last: number | null }>(
      `SELECT ${MS('min(bucket)')} AS first, ${MS('max(bucket)')} AS last FROM bars_1m WHERE symbol = $1`,
      { bind: [symbol], type: QueryTypes.SELECT },
    );
    const row = rows[0];
    return row?.first != null && row.last != null
      ? { first: row.first, last: row.last }
      : undefined;
  }

  /**
   * The newest 1-minute bucket of every symbol. A skip scan over the primary key (one index
   * probe per symbol) rather than a GROUP BY, which reads every row of `bars_1m`.
   */
  async lastBuckets(): Promise<Map<MarketSymbol, EpochMs>> {
    const rows = await this.sequelize.query<{ symbol: MarketSymbol; bucket: number }>(
      `WITH RECURSIVE symbols AS (
         (SELECT symbol FROM bars_1m ORDER BY symbol LIMIT 1)
         UNION ALL
         SELECT (SELECT b.symbol FROM bars_1m b WHERE b.symbol > s.symbol ORDER BY b.symbol LIMIT 1)
         FROM symbols s WHERE s.symbol IS NOT NULL
       )
       SELECT s.symbol,
              ${MS('(SELECT max(b.bucket) FROM bars_1m b WHERE b.symbol = s.symbol)')} AS bucket
       FROM symbols s WHERE s.symbol IS NOT NULL`,
      { type: QueryTypes.SELECT },
    );
    return new Map(rows.map((r) => [r.symbol, r.bucket]));
  }

  /**
   * The newest stored trade time of every symbol whose newest minute is at or after `since`
   * (default: every symbol, however old its data): the symbols a restarting live consumer has
   * forming candles for. A newest minute without stored trades (a candle, or trades since
   * dropped) answers its bucket time.
   */
  async latestTradeTimes(since: EpochMs = -Infinity): Promise<Map<MarketSymbol, EpochMs>> {
    const out = new Map<MarketSymbol, EpochMs>();
    for (const [symbol, bucket] of await this.lastBuckets()) {
      if (bucket < since) continue;
      const rows = await this.sequelize.query<{ ts: number | null }>(
        `SELECT ${MS('max(ts)')} AS ts FROM ticks WHERE symbol = $1 AND ts >= ${FROM_MS('$2::bigint')}`,
        { bind: [symbol, bucket], type: QueryTypes.SELECT },
      );
      out.set(symbol, rows[0]?.ts ?? bucket);
    }
    return out;
  }

  /** The stored trades of `symbol` with time in [from, to), in (ts, id) order. */
  async readTrades(
    symbol: MarketSymbol,
    from: EpochMs,
    to: EpochMs = MAX_STORED_TS_MS,
    transaction?: Transaction,
  ): Promise<Tick[]> {
    const rows = await this.sequelize.query<{
      ts: number;
      trade_id: string;
      price: number;
      size: number;
      side: Tick['side'];
      source: Tick['source'];
    }>(
      `SELECT ${MS('ts')} AS ts, trade_id, price, size, side, source FROM ticks
       WHERE symbol = $1 AND ts >= ${FROM_MS('$2::bigint')} AND ts < ${FROM_MS('$3::bigint')}
       ORDER BY ts, trade_id COLLATE "C"`,
      {
        bind: [symbol, from, to],
        type: QueryTypes.SELECT,
        ...(transaction ? { transaction } : {}),
      },
    );
    return rows.map((r) => ({
      v: 1,
      symbol,
      ts: r.ts,
      price: r.price,
      size: r.size,
      side: r.side,
      id: r.trade_id,
      source: r.source,
    }));
  }

  /**
   * The stretches of time that have bars, for finding what to backfill: consecutive minutes,
   * and the hours and days an hour or day candle covers (the source had no minutes there, so
   * asking it again cannot give more). Clipped to [from, to).
   */
  async coveredRanges(symbol: MarketSymbol, from?: EpochMs, to?: EpochMs): Promise<CoveredRange[]> {
    const lo = from ?? 0;
    const hi = to ?? MAX_STORED_TS_MS;
    const rows = await this.sequelize.query<{ from: number; to: number }>(
      `SELECT greatest(${MS('min(s)')}, $2::float8) AS "from", least(${MS('max(e)')}, $3::float8) AS "to"
       FROM (
         SELECT s, e, count(*) FILTER (WHERE prev_e IS NULL OR s > prev_e) OVER (ORDER BY s) AS island
         FROM (
           SELECT bucket AS s, bucket + span_min * INTERVAL '1 minute' AS e,
                  lag(bucket + span_min * INTERVAL '1 minute') OVER (ORDER BY bucket) AS prev_e
           FROM bars_1m
           WHERE symbol = $1
             AND bucket >= ${FROM_MS('$2::bigint')} - INTERVAL '1 day'
             AND bucket < ${FROM_MS('$3::bigint')}
             AND bucket + span_min * INTERVAL '1 minute' > ${FROM_MS('$2::bigint')}
         ) rows
       ) runs
       GROUP BY island ORDER BY 1`,
      { bind: [symbol, lo, hi], type: QueryTypes.SELECT },
    );
    return rows;
  }
}
