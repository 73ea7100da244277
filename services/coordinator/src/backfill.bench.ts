/**
 * Backfill speed, beside a baseline measured in the same run:
 * - through the platform: POST /backfills for N days of 1m of one symbol on an empty database,
 *   until the job is done (coordinator, producer, dynamic consumer and datastore each a process,
 *   the embedded broker, real PostgreSQL): minutes stored per second;
 * - the baseline: the same candles (the synthetic source's, computed up front) written with a bare
 *   `upsertCandles` in batches of 1,000, no broker and no services.
 * Figures are printed as a table at the end; vitest's own line is one run each.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type { MarketSymbol } from '@candlestream/core';
import { DAY_MS, MINUTE_MS } from '@candlestream/core';
import { migrate, Repository } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import { syntheticCandles } from '@candlestream/producer';
import type { ServiceProcess } from '@candlestream/testkit';
import { createTestDatabase, needServices, spawnService } from '@candlestream/testkit';
import { afterAll, bench, describe } from 'vitest';

const services = needServices(['postgres']);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const main = (service: string): string => join(ROOT, 'services', service, 'src', 'main.ts');
const logger = silentLogger();
const BTC = 'BTC-USD' as MarketSymbol;
const SYMBOLS = [BTC, 'ETH-USD' as MarketSymbol];
const DAYS = 20;
const RATE = 2;
const SEED = 3;
const UPSERT_BATCH = 1_000;
const ONCE = { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 };
const POLL_MS = 100;

const rows: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  process.stdout.write(
    `\nbackfill figures (${DAYS} days of 1m, one symbol):\n${rows.join('\n')}\n`,
  );
});

const row = (label: string, minutes: number, ms: number): void => {
  rows.push(
    `  ${label.padEnd(58)} ${String(Math.round(minutes / (ms / 1_000))).padStart(8)} minutes/s   ${(ms / 1_000).toFixed(1)} s for ${minutes} minutes`,
  );
};

describe.skipIf(services.skip)('backfill', () => {
  const to = Math.floor((Date.now() - 3 * DAY_MS) / MINUTE_MS) * MINUTE_MS;
  const from = to - DAYS * DAY_MS;
  const minutes = (to - from) / MINUTE_MS;

  bench(
    `through the platform: POST /backfills until done`,
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'cs-bench-backfill-'));
      const broker: RunningBroker = await startBroker({ port: 0, dataDir });
      const db = await createTestDatabase(services.get('postgres').url, 'bench_backfill');
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
      cleanups.push(() => broker.stop());
      cleanups.push(() => db.drop());
      await migrate({ url: db.url }, { logger });
      const env = {
        KAFKA_BROKERS: broker.brokers,
        DATABASE_URL: db.url,
        SYMBOLS: SYMBOLS.join(','),
        HEALTH_PORT: '0',
        PORT: '0',
        SYNTHETIC_SEED: String(SEED),
        SYNTHETIC_RATE: String(RATE),
        RATE_LIMIT_PER_MINUTE: '1000000',
        LOG_LEVEL: 'info',
      };
      const start = async (service: string, ready: (l: Record<string, unknown>) => boolean) => {
        const p: ServiceProcess = spawnService(main(service), env);
        cleanups.push(() => p.kill());
        return p.waitForLine(ready, 60_000);
      };
      const healthy = (l: Record<string, unknown>) =>
        typeof l['to'] === 'string' && /healthy/.test(l['to']);
      await start('dynamic-consumer', healthy);
      await start('coordinator', healthy);
      await start('producer', healthy);
      const listening = await start('datastore', (l) => l['msg'] === 'listening');
      const url = `http://127.0.0.1:${String(listening['port'])}`;

      const began = performance.now();
      const posted = await fetch(`${url}/backfills`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          symbol: BTC,
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
        }),
      });
      const { id } = (await posted.json()) as { id: string };
      for (;;) {
        const view = (await (await fetch(`${url}/backfills/${id}`)).json()) as { status: string };
        if (view.status === 'done') break;
        if (view.status === 'failed') throw new Error(`backfill failed: ${JSON.stringify(view)}`);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      row(
        'platform: request to done (fetch, broker, store, refresh)',
        minutes,
        performance.now() - began,
      );
    },
    ONCE,
  );

  bench(
    'baseline: bare upsertCandles of the same candles',
    async () => {
      const db = await createTestDatabase(services.get('postgres').url, 'bench_upsert');
      cleanups.push(() => db.drop());
      await migrate({ url: db.url }, { logger });
      const repository = new Repository({ url: db.url, logger });
      cleanups.push(() => repository.close());
      const candles = syntheticCandles(
        { symbols: SYMBOLS, seed: SEED, tradesPerSecond: RATE },
        BTC,
        { from, to },
      );
      const began = performance.now();
      for (let i = 0; i < candles.length; i += UPSERT_BATCH) {
        await repository.upsertCandles(BTC, candles.slice(i, i + UPSERT_BATCH), 'bench');
      }
      row('baseline: upsertCandles in batches of 1,000', candles.length, performance.now() - began);
    },
    ONCE,
  );
});
