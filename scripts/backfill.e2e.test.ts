/**
 * `pnpm backfill` as a process against a real datastore (in this process, on real PostgreSQL and
 * the embedded broker in its own process). The coordinator is another service; here the test
 * plays it, clearly as its stand-in: it writes the backfill_jobs rows the coordinator would write
 * (queued, fetching, storing with progress, done or failed) while the CLI follows the job.
 */
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { loadDatastoreConfig, startDatastore, type Datastore } from '@candlestream/datastore';
import { BackfillJobs, migrate, Repository } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess, TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, spawnService, waitUntil } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Core's types, through db's (the root package depends on db, not on core). */
type MarketSymbol = Parameters<BackfillJobs['create']>[0]['symbol'];
type EpochMs = number;

const services = needServices(['postgres']);
const logger = silentLogger();
const CLI = fileURLToPath(new URL('./backfill.ts', import.meta.url));
const BROKER_MAIN = fileURLToPath(new URL('../packages/broker/src/main.ts', import.meta.url));
const WAIT_MS = 60_000;
const FROM = Date.UTC(2026, 10, 1);
const TO = Date.UTC(2026, 10, 8);
const WEEK_MINUTES = (TO - FROM) / 60_000;

function run(args: string[], env: Record<string, string> = {}): ServiceProcess {
  return spawnService(CLI, env, args);
}

function stdout(cli: ServiceProcess): string[] {
  return cli.lines.map((l) => String(l['msg']));
}

/** The id the CLI prints on its first line, `backfill <id>: …`. */
async function jobId(cli: ServiceProcess): Promise<string> {
  const line = await cli.waitForLine((l) => String(l['msg']).startsWith('backfill '), WAIT_MS);
  return /^backfill ([^:]+):/.exec(String(line['msg']))![1]!;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.skipIf(services.skip)('pnpm backfill (the CLI, as a process)', () => {
  let broker: ServiceProcess;
  let db: TestDatabase;
  let repo: Repository;
  let jobs: BackfillJobs;
  let datastore: Datastore;
  let url: string;

  /** The coordinator's stand-in: moves job `id` through the states the coordinator records. */
  async function step(id: string, change: Parameters<BackfillJobs['update']>[1]): Promise<void> {
    await jobs.update(id, change, Date.now());
    // Long enough for the CLI's 500 ms poll to see every step.
    await new Promise((resolve) => setTimeout(resolve, 700));
  }

  beforeAll(async () => {
    broker = spawnService(BROKER_MAIN, { LOG_LEVEL: 'info' }, ['--port', '0']);
    const listening = await broker.waitForLine((l) => l['msg'] === 'broker listening');
    db = await createTestDatabase(services.get('postgres').url, 'cli_backfill');
    await migrate({ url: db.url }, { logger });
    repo = new Repository({ url: db.url, logger });
    jobs = new BackfillJobs(repo);
    datastore = await startDatastore(
      loadDatastoreConfig({
        KAFKA_BROKERS: `127.0.0.1:${String(listening['port'])}`,
        DATABASE_URL: db.url,
        PORT: '0',
        SYMBOLS: 'BTC-USD',
      }),
      logger,
    );
    url = `http://127.0.0.1:${datastore.port}`;
    await waitUntil('datastore live', () => datastore.state() === 'live.healthy', WAIT_MS);
  });

  afterAll(async () => {
    await datastore?.stop();
    await repo?.close();
    await db?.drop();
    await broker?.kill('SIGKILL');
  });

  it('a bad argument is one clear line and the usage, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [[], /^--symbol is required$/m],
      [['--symbol', 'BTC-USD', '--from', '2026-11-01'], /^--to is required$/m],
      [['--symbol', 'BTC-USD', '--bogus'], /Unknown option '--bogus'/],
      // Refused by the platform: its message, naming the field.
      [
        ['--symbol', 'BTC-USD', '--from', 'yesterday', '--to', '2026-11-08', '--url', url],
        /^from "yesterday" is not an ISO-8601 time/m,
      ],
      [
        ['--symbol', 'DOGE-USD', '--from', '2026-11-01', '--to', '2026-11-08', '--url', url],
        /^unknown symbol DOGE-USD$/m,
      ],
    ];
    for (const [args, message] of cases) {
      const cli = run(args);
      expect({ args, code: await cli.exited }).toEqual({ args, code: 2 });
      expect(cli.stderr()).toMatch(message);
      expect(cli.stderr()).toMatch(/^usage: pnpm backfill --symbol/m);
      expect(cli.stderr().trim().split('\n')[0]).toMatch(message);
    }
  });

  it('says when no platform answers, exit 1', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const cli = run(['--symbol', 'BTC-USD', '--from', '2026-11-01', '--to', '2026-11-08'], {
      PORT: new URL(nowhere).port,
    });
    expect(await cli.exited).toBe(1);
    expect(cli.stderr().trim()).toBe(`no platform answers at ${nowhere}; start it with pnpm start`);
  });

  it('follows a job to done with a progress line per change, then what the source lacked, exit 0', async () => {
    const cli = run([
      '--symbol',
      'btc-usd',
      '--from',
      '2026-11-01',
      '--to',
      '2026-11-08',
      '--url',
      url,
    ]);
    const id = await jobId(cli);
    const symbol = 'BTC-USD' as MarketSymbol;
    await jobs.create({ id, symbol, from: FROM, to: TO, requestedBy: 'api' }, Date.now());
    const started = Date.now();
    await step(id, {
      status: 'fetching',
      ranges: [{ from: FROM, to: TO }],
      progress: { done: 0, total: WEEK_MINUTES },
      startedAt: started,
    });
    for (const done of [2_520, 5_040, 10_080] as const) {
      await step(id, { status: 'storing', progress: { done, total: WEEK_MINUTES } });
    }
    const gap: { from: EpochMs; to: EpochMs; reason: string } = {
      from: FROM,
      to: FROM + 3_600_000,
      reason: 'beyond the source history',
    };
    await step(id, { status: 'done', finishedAt: Date.now(), unavailable: [gap] });
    expect(await cli.exited).toBe(0);
    const out = stdout(cli);
    expect(out[0]).toBe(
      `backfill ${id}: BTC-USD 2026-11-01T00:00:00.000Z .. 2026-11-08T00:00:00.000Z`,
    );
    const progress = out.filter((l) => l.startsWith('['));
    expect(progress[0]).toMatch(/^\[\.{30}\]\s+0% 0\/0 min -- min\/s ETA --:-- queued$/);
    expect(progress).toContainEqual(
      expect.stringMatching(/\s25% 2,520\/10,080 min [\d.]+ min\/s ETA \d\d:\d\d storing$/),
    );
    expect(progress).toContainEqual(expect.stringMatching(/\s50% 5,040\/10,080 min/));
    expect(progress.at(-1)).toMatch(/^\[#{30}\] 100% 10,080\/10,080 min .* done$/);
    // One line per change, not per poll.
    expect(new Set(progress).size).toBe(progress.length);
    expect(out.slice(-3)).toEqual([
      'done: 10080 minutes stored',
      'the source could not provide:',
      '  2026-11-01T00:00:00.000Z .. 2026-11-01T01:00:00.000Z: beyond the source history',
    ]);
  });

  it('exits 1 with the reason when the job fails', async () => {
    const cli = run([
      '--symbol',
      'BTC-USD',
      '--from',
      '2026-11-01',
      '--to',
      '2026-11-02',
      '--url',
      url,
    ]);
    const id = await jobId(cli);
    await jobs.create(
      { id, symbol: 'BTC-USD' as MarketSymbol, from: FROM, to: FROM + 86_400_000 },
      Date.now(),
    );
    await step(id, {
      status: 'failed',
      error: 'the source refused: rate limited',
      finishedAt: Date.now(),
    });
    expect(await cli.exited).toBe(1);
    expect(cli.stderr().trim()).toBe(`backfill ${id} failed: the source refused: rate limited`);
  });
});
