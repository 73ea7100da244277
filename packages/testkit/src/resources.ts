import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

/** A short random suffix; names stay unique across parallel test files and repeated runs. */
export function randomSuffix(): string {
  return randomBytes(5).toString('hex');
}

/** A unique Kafka topic or consumer-group name (`[a-z0-9._-]`, well under 249 characters). */
export function uniqueName(label: string): string {
  const clean = label
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-')
    .slice(0, 40);
  return `${clean}-${randomSuffix()}`;
}

export interface TestDatabase {
  name: string;
  /** URL of the new, empty database. */
  url: string;
  /** Drops the database, ending any connection still open to it. Idempotent. */
  drop(): Promise<void>;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `cs_<label>_<random>`: a lower-case SQL identifier unique to one test. */
function isolatedName(label: string): string {
  const clean = label
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 30);
  return `cs_${clean}_${randomSuffix()}`;
}

/** Runs one statement on its own short-lived connection. */
async function runSql(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Wraps `fn` so that only its first call runs: idempotent cleanups. */
function once(fn: () => Promise<void>): () => Promise<void> {
  let called = false;
  return async () => {
    if (called) return;
    called = true;
    await fn();
  };
}

/** Creates an empty database for one test (or file) on the server behind `adminUrl`. */
export async function createTestDatabase(adminUrl: string, label = 'test'): Promise<TestDatabase> {
  const name = isolatedName(label);
  await runSql(adminUrl, `CREATE DATABASE ${quoteIdent(name)}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    // WITH (FORCE) (PostgreSQL 13+) ends sessions a failed test left open.
    drop: once(() => runSql(adminUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`)),
  };
}

export interface TestSchema {
  /** Schema name; put it first on the search_path of every connection. */
  schema: string;
  /** Drops the schema and everything in it. Idempotent. */
  drop(): Promise<void>;
}

/**
 * Creates an empty schema for one test on the server behind `url`. Where a server cannot give
 * each test a database (PGlite serves one session), a schema is the unit of isolation.
 */
export async function createTestSchema(url: string, label = 'test'): Promise<TestSchema> {
  const schema = isolatedName(label);
  await runSql(url, `CREATE SCHEMA ${quoteIdent(schema)}`);
  return {
    schema,
    drop: once(() => runSql(url, `DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`)),
  };
}

export interface TestRedis {
  /** Every key this test writes starts with it. */
  prefix: string;
  /** A client whose commands are prefixed automatically (ioredis `keyPrefix`). */
  client: Redis;
  /** Deletes the test's keys and disconnects. Idempotent. */
  close(): Promise<void>;
}

const SCAN_COUNT = 500;

/** Deletes every key that starts with `prefix` (SCAN, so a large keyspace is not blocked). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

export async function createTestRedis(url: string, label = 'test'): Promise<TestRedis> {
  const prefix = `cs:test:${label}:${randomSuffix()}:`;
  const client = new Redis(url, { keyPrefix: prefix, lazyConnect: true, maxRetriesPerRequest: 2 });
  await client.connect();
  return {
    prefix,
    client,
    close: once(async () => {
      // SCAN results carry full key names, so clean up through an unprefixed client.
      const raw = new Redis(url, { lazyConnect: true });
      try {
        await raw.connect();
        await deleteKeysWithPrefix(raw, prefix);
      } finally {
        raw.disconnect();
        client.disconnect();
      }
    }),
  };
}
