/**
 * `pnpm rebuild` as a user runs it: trades land in `ticks` from another writer (a COPY of an
 * archive), the candles do not know them, and the command brings every ohlcv_* relation in line.
 */
import { fileURLToPath } from 'node:url';
import type { Bar, Interval, MarketSymbol } from '@candlestream/core';
import { aggregateTicks, diffBars } from '@candlestream/core';
import { randomTicks } from '@candlestream/core/testing';
import { silentLogger } from '@candlestream/logger';
import type { TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, spawnService } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from './connection.js';
import { migrate } from './migrate.js';
import { Repository, tickColumns } from './repository.js';

const services = needServices(['postgres']);
const REBUILD_MAIN = fileURLToPath(new URL('./rebuild-main.ts', import.meta.url));
const BTC = 'BTC-USD' as MarketSymbol;
const START = Date.UTC(2023, 4, 1, 9, 30); // years old, as archives are
const SPAN_MS = 6 * 3_600_000;
const INTERVALS: Interval[] = ['1m', '5m', '15m', '1h', '4h', '1d'];

describe.skipIf(services.skip)('pnpm rebuild (PostgreSQL)', () => {
  let db: TestDatabase;
  let repo: Repository;
  const ticks = randomTicks({
    seed: 11,
    count: 3_000,
    from: START,
    spanMs: SPAN_MS,
    symbols: [BTC],
  });

  beforeAll(async () => {
    db = await createTestDatabase(services.get('postgres').url, 'rebuild');
    await migrate({ url: db.url }, { logger: silentLogger() });
    repo = new Repository({ url: db.url, logger: silentLogger() });
    // The first hour goes in the ordinary way; the rest as another writer's bulk load.
    await repo.insertTrades(ticks.filter((t) => t.ts < START + 3_600_000));
    const client = await connect({ url: db.url });
    try {
      await client.query(
        `INSERT INTO ticks (symbol, ts, trade_id, price, size, side, source)
         SELECT s, TIMESTAMPTZ 'epoch' + ms * INTERVAL '1 millisecond', id, p, q, sd, src
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::text[])
           AS u(s, ms, id, p, q, sd, src)
         ON CONFLICT DO NOTHING`,
        tickColumns(ticks),
      );
    } finally {
      await client.end();
    }
  });
  afterAll(async () => {
    await repo?.close();
    await db?.drop();
  });

  async function problems(): Promise<string[]> {
    const out: string[] = [];
    for (const interval of INTERVALS) {
      const want = aggregateTicks(ticks, interval).get(BTC)!;
      const got: Bar[] = await repo.readBars(
        BTC,
        interval,
        START - 86_400_000,
        START + SPAN_MS + 86_400_000,
      );
      const tolerance = interval === '1m' ? {} : { volumeRelTol: 1e-9 };
      out.push(...diffBars(want, got, tolerance).map((d) => `${interval}: ${d.message}`));
    }
    return out;
  }

  async function run(
    args: string[],
  ): Promise<{ code: number | string; stderr: string; lines: Record<string, unknown>[] }> {
    const p = spawnService(REBUILD_MAIN, { DATABASE_URL: db.url, LOG_LEVEL: 'info' }, args);
    const code = await p.exited;
    return { code, stderr: p.stderr(), lines: p.lines };
  }

  it('brings every ohlcv relation in line with ticks, idempotently, with progress', async () => {
    expect((await problems()).length).toBeGreaterThan(0); // the bulk-loaded hours are missing
    const args = ['--symbol', 'btcusd', '--from', '2023-05-01T09:00Z', '--to', '2023-05-01T16:00Z'];
    const first = await run(args);
    expect(first.code, first.stderr).toBe(0);
    const done = first.lines.find((l) => l['msg'] === 'rebuild done');
    expect(done).toMatchObject({ symbol: BTC, trades: ticks.length, minutes: expect.any(Number) });
    const progress = first.lines.filter((l) => l['msg'] === 'rebuild progress');
    expect(progress[0]?.['line']).toMatch(
      /^\[#*\.*\] \d+\.\d% 2023-05-01T\d\d:00:00\.000Z · \d+ minutes/,
    );
    expect(await problems()).toEqual([]);
    const minutesBefore = await repo.readBars(BTC, '1m', START, START + SPAN_MS);
    const second = await run(args);
    expect(second.code, second.stderr).toBe(0);
    expect(await repo.readBars(BTC, '1m', START, START + SPAN_MS)).toEqual(minutesBefore);
    expect(await problems()).toEqual([]);
  });

  it('refuses bad arguments with one line and exit status 2', async () => {
    const bad = await run(['--symbol', 'BTC-USD', '--from', '2023-05-02', '--to', '2023-05-01']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([
      'rebuild: --to 2023-05-01T00:00:00.000Z must be after --from 2023-05-02T00:00:00.000Z',
    ]);
    const missing = await run(['--from', '2023-05-01', '--to', '2023-05-02']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--symbol is required; usage: pnpm run rebuild/);
  });
});
