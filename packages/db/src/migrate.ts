import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { AppError } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type pg from 'pg';
import type { DbTarget } from './connection.js';
import { connect } from './connection.js';
import { splitSql } from './sql-split.js';

export type Backend = 'timescaledb' | 'postgres';

/** The repository's top-level `migrations/` folder. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url));

const FILE_RE = /^(\d{4})_([a-z0-9_]+?)(?:\.(timescaledb|postgres))?\.sql$/;
const NO_TRANSACTION = /^\s*--\s*migrate:no-transaction\s*$/m;
/** One migrator at a time per database: pg_advisory_lock key (arbitrary, fixed). */
const MIGRATION_LOCK_KEY = 7_241_003;

export interface Migration {
  version: string;
  name: string;
  /** SQL per backend; `common` serves a backend without its own variant. */
  sql: Partial<Record<Backend | 'common', string>>;
}

/** Reads `NNNN_name.sql`, `NNNN_name.timescaledb.sql` and `NNNN_name.postgres.sql`, in order. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const byVersion = new Map<string, Migration>();
  for (const file of (await readdir(dir)).sort()) {
    const match = FILE_RE.exec(file);
    if (!match) {
      if (file.endsWith('.sql'))
        throw new AppError(
          'INVALID_ARGUMENT',
          `migration file ${file} is not NNNN_name[.backend].sql`,
        );
      continue;
    }
    const [, version, name, backend] = match as unknown as [
      string,
      string,
      string,
      Backend | undefined,
    ];
    const existing = byVersion.get(version);
    if (existing && existing.name !== name) {
      throw new AppError(
        'INVALID_ARGUMENT',
        `migrations ${version}_${existing.name} and ${version}_${name} share a number`,
      );
    }
    const migration = existing ?? { version, name, sql: {} };
    migration.sql[backend ?? 'common'] = await readFile(`${dir}/${file}`, 'utf8');
    byVersion.set(version, migration);
  }
  return [...byVersion.values()];
}

export interface BackendInfo {
  backend: Backend;
  /** TimescaleDB's version when it is in use. */
  timescaledb?: string;
  /** Why plain PostgreSQL was chosen, when it was. */
  reason?: string;
}

/**
 * TimescaleDB when its extension is installed and licensed for continuous aggregates (the
 * Timescale License, not Apache-only). The extension is created only when the server preloads
 * it: CREATE EXTENSION without the preload kills the connection.
 */
export async function detectBackend(client: pg.Client): Promise<BackendInfo> {
  const installed = await client.query<{ extversion: string }>(
    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
  );
  if (installed.rowCount === 0) {
    const available = await client.query(
      "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'",
    );
    if (available.rowCount === 0)
      return { backend: 'postgres', reason: 'timescaledb extension not available' };
    const preload = await client.query<{ libraries: string | null }>(
      "SELECT current_setting('shared_preload_libraries', true) AS libraries",
    );
    if (!/\btimescaledb\b/.test(preload.rows[0]?.libraries ?? '')) {
      return {
        backend: 'postgres',
        reason: 'timescaledb is available but not in shared_preload_libraries',
      };
    }
    await client.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
  }
  const version = await client.query<{ extversion: string }>(
    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'",
  );
  const license = await client.query<{ license: string | null }>(
    "SELECT current_setting('timescaledb.license', true) AS license",
  );
  if (license.rows[0]?.license !== 'timescale') {
    return {
      backend: 'postgres',
      reason: 'timescaledb is Apache-licensed here: no continuous aggregates',
    };
  }
  return { backend: 'timescaledb', timescaledb: version.rows[0]!.extversion };
}

export interface MigrateOptions {
  dir?: string;
  logger: Logger;
}

export interface MigrateResult extends BackendInfo {
  applied: string[];
}

function checksum(sql: string | undefined): string {
  return createHash('sha256')
    .update(sql ?? '')
    .digest('hex')
    .slice(0, 16);
}

/**
 * Applies pending migrations, each once, recording them in `schema_migrations`. A migration that
 * changed after it was applied, or a database that switched backends, stops the run: shipped
 * migrations are frozen. Files marked `-- migrate:no-transaction` run statement by statement
 * (TimescaleDB refuses continuous-aggregate DDL in a transaction) and must be safe to re-run.
 */
export async function migrate(target: DbTarget, options: MigrateOptions): Promise<MigrateResult> {
  const log = options.logger.child({ component: 'migrate' });
  const migrations = await loadMigrations(options.dir);
  const client = await connect(target);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      const info = await detectBackend(client);
      log.info('backend detected', { ...info });
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    text PRIMARY KEY,
        name       text NOT NULL,
        backend    text NOT NULL,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = await client.query<{
        version: string;
        name: string;
        backend: string;
        checksum: string;
      }>('SELECT version, name, backend, checksum FROM schema_migrations');
      const applied = new Map(done.rows.map((r) => [r.version, r]));
      const appliedNow: string[] = [];
      for (const migration of migrations) {
        const sql = migration.sql[info.backend] ?? migration.sql.common;
        const sum = checksum(sql);
        const label = `${migration.version}_${migration.name}`;
        const previous = applied.get(migration.version);
        if (previous) {
          if (previous.backend !== info.backend) {
            throw new AppError(
              'CONFLICT',
              `migration ${label} was applied for ${previous.backend}, but this database is now ${info.backend}`,
            );
          }
          if (previous.checksum !== sum) {
            throw new AppError(
              'CONFLICT',
              `migration ${label} changed after it was applied; add a new migration instead`,
            );
          }
          continue;
        }
        const started = Date.now();
        if (sql !== undefined && NO_TRANSACTION.test(sql)) {
          for (const statement of splitSql(sql)) await client.query(statement);
          await record(client, migration, info.backend, sum);
        } else {
          await client.query('BEGIN');
          try {
            if (sql !== undefined) await client.query(sql);
            await record(client, migration, info.backend, sum);
            await client.query('COMMIT');
          } catch (err) {
            await client.query('ROLLBACK');
            throw err;
          }
        }
        appliedNow.push(label);
        log.info('migration applied', {
          migration: label,
          backend: info.backend,
          skipped: sql === undefined,
          durationMs: Date.now() - started,
        });
      }
      log.info('migrations done', {
        applied: appliedNow.length,
        total: migrations.length,
        backend: info.backend,
      });
      return { ...info, applied: appliedNow };
    } finally {
      await client
        .query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
        .catch(() => undefined);
    }
  } finally {
    await client.end();
  }
}

async function record(
  client: pg.Client,
  migration: Migration,
  backend: Backend,
  sum: string,
): Promise<void> {
  await client.query(
    'INSERT INTO schema_migrations (version, name, backend, checksum) VALUES ($1, $2, $3, $4)',
    [migration.version, migration.name, backend, sum],
  );
}
