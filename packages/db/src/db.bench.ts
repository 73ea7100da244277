/**
 * Storage speed per backend (plain PostgreSQL, TimescaleDB on PGlite, a real TimescaleDB when one
 * is configured), each figure beside a baseline measured in the same run:
 * - ingest: Repository.insertTrades in batches of 1,000 and 10,000 trades (rows/s), beside a
 *   bare INSERT into `ticks` that maintains no bars;
 * - queries (p50 and p99): 1 day of 1m bars and 1 year of 1h bars through the repository, beside
 *   the naive GROUP BY over the raw trades.
 * The data: one trade every five minutes for a year for one symbol (105,408 trades), loaded in
 * bulk and rebuilt into minutes in one statement, aggregates refreshed as the policies would.
 */
import type { MarketSymbol, Tick } from '@candlestream/core';
import { SimulatedClock } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { createTestSchema, needServices, percentile } from '@candlestream/testkit';
import { QueryTypes } from 'sequelize';
import { afterAll, bench, describe } from 'vitest';
import { migrate } from './migrate.js';
import { MAX_ROWS_PER_STATEMENT, Repository, tickColumns } from './repository.js';

const YEAR_START = Date.UTC(2024, 0, 1);
const YEAR_MS = 366 * 86_400_000;
const TRADE_EVERY_MS = 300_000;
const BTC = 'BTC-USD' as MarketSymbol;
const ETH = 'ETH-USD' as MarketSymbol;
const QUERY_DAY = Date.UTC(2024, 6, 1);

const required = needServices(['postgres', 'pglite']);
const optional = needServices(['timescaledb'], { optional: true });
const backends: { name: string; url: string; poolMax: number }[] = [];
if (!required.skip) {
  backends.push({ name: 'postgres', url: required.get('postgres').url, poolMax: 4 });
  backends.push({ name: 'pglite-timescaledb', url: required.get('pglite').url, poolMax: 1 });
}
if (!optional.skip)
  backends.push({ name: 'timescaledb', url: optional.get('timescaledb').url, poolMax: 4 });

function trade(symbol: MarketSymbol, i: number, ts: number): Tick {
  const price = 40_000 + 5_000 * Math.sin(i / 5_000) + (i % 97);
  return {
    v: 1,
    symbol,
    ts,
    price,
    size: 0.001 + (i % 1_000) / 1_000,
    side: i % 2 ? 'buy' : 'sell',
    id: `b${i}`,
    source: 'synthetic',
  };
}

interface Row {
  backend: string;
  bench: string;
  'rows/s'?: number;
  'p50 ms'?: number;
  'p99 ms'?: number;
}
const results: Row[] = [];

/** Rounded for the table. */
function p2(sorted: number[], p: number): number {
  return Number(percentile(sorted, p).toFixed(2));
}

/** Records durations of `fn`; the table at the end reports p50/p99 and rows/s from them. */
function timed(
  backend: string,
  name: string,
  rowsPerOp: number,
  fn: () => Promise<unknown>,
): () => Promise<void> {
  const durations: number[] = [];
  const row: Row = { backend, bench: name };
  results.push(row);
  return async () => {
    const started = performance.now();
    await fn();
    durations.push(performance.now() - started);
    const sorted = [...durations].sort((a, b) => a - b);
    row['p50 ms'] = p2(sorted, 50);
    row['p99 ms'] = p2(sorted, 99);
    if (rowsPerOp > 0)
      row['rows/s'] = Math.round(
        (rowsPerOp * durations.length) / (durations.reduce((a, b) => a + b, 0) / 1_000),
      );
  };
}

const NAIVE_BARS_SQL = `
SELECT date_bin($4::interval, ts, TIMESTAMPTZ 'epoch') AS bucket,
       (array_agg(price ORDER BY ts, trade_id COLLATE "C"))[1] AS open, max(price) AS high, min(price) AS low,
       (array_agg(price ORDER BY ts DESC, trade_id COLLATE "C" DESC))[1] AS close, sum(size) AS volume
FROM ticks
WHERE symbol = $1 AND ts >= TIMESTAMPTZ 'epoch' + $2::bigint * INTERVAL '1 millisecond'
  AND ts < TIMESTAMPTZ 'epoch' + $3::bigint * INTERVAL '1 millisecond'
GROUP BY 1 ORDER BY 1`;

for (const backend of backends) {
  const schema = await createTestSchema(backend.url, 'bench');
  const target = { url: backend.url, schema: schema.schema };
  await migrate(target, { logger: silentLogger() });
  const repo = new Repository({
    ...target,
    logger: silentLogger(),
    poolMax: backend.poolMax,
    clock: new SimulatedClock(YEAR_START + YEAR_MS),
  });
  /** A bare INSERT into ticks: no minute rebuild, no lock (the baseline, and the bulk load). */
  const raw = async (ticks: Tick[]): Promise<void> => {
    await repo.sequelize.query(
      `INSERT INTO ticks (symbol, ts, trade_id, price, size, side, source)
       SELECT s, TIMESTAMPTZ 'epoch' + ms * INTERVAL '1 millisecond', id, p, z, sd, src
       FROM unnest($1::text[], $2::bigint[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::text[]) AS u(s, ms, id, p, z, sd, src)
       ON CONFLICT DO NOTHING`,
      { bind: tickColumns(ticks) },
    );
  };
  const loadStarted = performance.now();
  let n = 0;
  for (let ts = YEAR_START; ts < YEAR_START + YEAR_MS;) {
    const batch: Tick[] = [];
    for (; batch.length < MAX_ROWS_PER_STATEMENT && ts < YEAR_START + YEAR_MS; ts += TRADE_EVERY_MS)
      batch.push(trade(BTC, n++, ts));
    await raw(batch);
  }
  await repo.rebuildMinutes(BTC, YEAR_START, YEAR_START + YEAR_MS);
  await repo.refreshAggregates(YEAR_START, YEAR_START + YEAR_MS);
  process.stdout.write(
    `[bench] ${backend.name}: loaded ${n} trades in ${((performance.now() - loadStarted) / 1_000).toFixed(1)} s\n`,
  );

  // Fresh trades for the ingest benches: another symbol, after the loaded year.
  let next = 0;
  const fresh = (count: number): Tick[] =>
    Array.from({ length: count }, () => trade(ETH, next, YEAR_START + YEAR_MS + next++ * 1_000));
  const ingest = { iterations: 10, time: 0, warmupIterations: 1, warmupTime: 0 };
  const query = { iterations: 30, time: 0, warmupIterations: 2, warmupTime: 0 };

  describe(`${backend.name}: ingest`, () => {
    bench(
      'insertTrades, batches of 1,000',
      timed(backend.name, 'insertTrades x1,000', 1_000, () => repo.insertTrades(fresh(1_000))),
      ingest,
    );
    bench(
      'baseline: bare INSERT of 400, no bars',
      timed(backend.name, 'baseline: bare INSERT x400', 400, () => raw(fresh(400))),
      ingest,
    );
    bench(
      'insertTrades, batches of 10,000',
      timed(backend.name, 'insertTrades x10,000', 10_000, () => repo.insertTrades(fresh(10_000))),
      { ...ingest, iterations: 4 },
    );
  });

  describe(`${backend.name}: 1 day of 1m bars`, () => {
    bench(
      'repository',
      timed(backend.name, '1 day of 1m: repository', 0, () =>
        repo.readBars(BTC, '1m', QUERY_DAY, QUERY_DAY + 86_400_000),
      ),
      query,
    );
    bench(
      'baseline: GROUP BY over raw trades',
      timed(backend.name, '1 day of 1m: naive GROUP BY', 0, () =>
        repo.sequelize.query(NAIVE_BARS_SQL, {
          bind: [BTC, QUERY_DAY, QUERY_DAY + 86_400_000, '1 minute'],
          type: QueryTypes.SELECT,
        }),
      ),
      query,
    );
  });

  describe(`${backend.name}: 1 year of 1h bars`, () => {
    bench(
      'repository',
      timed(backend.name, '1 year of 1h: repository', 0, () =>
        repo.readBars(BTC, '1h', YEAR_START, YEAR_START + YEAR_MS),
      ),
      { ...query, iterations: 10 },
    );
    bench(
      'baseline: GROUP BY over raw trades',
      timed(backend.name, '1 year of 1h: naive GROUP BY', 0, () =>
        repo.sequelize.query(NAIVE_BARS_SQL, {
          bind: [BTC, YEAR_START, YEAR_START + YEAR_MS, '1 hour'],
          type: QueryTypes.SELECT,
        }),
      ),
      { ...query, iterations: 5 },
    );
  });

  afterAll(async () => {
    await repo.close();
    await schema.drop();
  });
}

afterAll(() => {
  console.table(results);
});
