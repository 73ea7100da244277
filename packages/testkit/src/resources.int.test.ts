import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  createTestRedis,
  deleteKeysWithPrefix,
  uniqueName,
} from './resources.js';
import { needServices } from './services.js';

const services = needServices(['postgres', 'redis']);

async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

describe.skipIf(services.skip)('isolated PostgreSQL databases', () => {
  it('gives each test its own empty database and drops it afterwards', async () => {
    const admin = services.get('postgres').url;
    const a = await createTestDatabase(admin, 'iso A');
    const b = await createTestDatabase(admin, 'iso-b');
    try {
      expect(a.name).toMatch(/^cs_iso_a_[0-9a-f]{10}$/);
      await query(a.url, 'CREATE TABLE only_in_a (x int)');
      const inA = await query(
        a.url,
        "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_in_a'",
      );
      const inB = await query(
        b.url,
        "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_in_a'",
      );
      expect(inA.rows[0]).toEqual({ n: 1 });
      expect(inB.rows[0]).toEqual({ n: 0 });
    } finally {
      await a.drop();
      await b.drop();
    }
    const left = await query(
      admin,
      `SELECT datname FROM pg_database WHERE datname IN ('${a.name}', '${b.name}')`,
    );
    expect(left.rows).toEqual([]);
  });

  it('drops a database even while a connection to it is still open', async () => {
    const db = await createTestDatabase(services.get('postgres').url, 'leak');
    const leaked = new pg.Client({ connectionString: db.url });
    leaked.on('error', () => undefined); // the forced drop terminates it
    await leaked.connect();
    await db.drop();
    const left = await query(
      services.get('postgres').url,
      `SELECT 1 FROM pg_database WHERE datname = '${db.name}'`,
    );
    expect(left.rowCount).toBe(0);
  });
});

describe.skipIf(services.skip)('isolated Redis key spaces', () => {
  const raw = new Redis(services.skip ? 'redis://127.0.0.1:1' : services.get('redis').url, {
    lazyConnect: true,
  });
  afterAll(() => raw.disconnect());

  it('prefixes every key a test writes and removes them on close', async () => {
    const a = await createTestRedis(services.get('redis').url, 'a');
    const b = await createTestRedis(services.get('redis').url, 'b');
    await a.client.set('bar:BTC-USD', 'from-a');
    await b.client.set('bar:BTC-USD', 'from-b');
    expect(await a.client.get('bar:BTC-USD')).toBe('from-a');
    expect(await b.client.get('bar:BTC-USD')).toBe('from-b');
    await raw.connect();
    expect(await raw.get(`${a.prefix}bar:BTC-USD`)).toBe('from-a');
    await a.close();
    expect(await raw.exists(`${a.prefix}bar:BTC-USD`)).toBe(0);
    expect(await raw.get(`${b.prefix}bar:BTC-USD`)).toBe('from-b');
    await b.close();
  });

  it('deletes many keys by prefix, and only those', async () => {
    const prefix = `cs:test:${uniqueName('bulk')}:`;
    const keep = `cs:test:${uniqueName('keep')}`;
    await raw.set(keep, '1');
    const pipeline = raw.pipeline();
    for (let i = 0; i < 1_200; i++) pipeline.set(`${prefix}${i}`, String(i));
    await pipeline.exec();
    expect(await deleteKeysWithPrefix(raw, prefix)).toBe(1_200);
    expect(await raw.get(keep)).toBe('1');
    await raw.del(keep);
  });
});

describe('unique names', () => {
  it('are valid Kafka topic names and differ every call', () => {
    const names = new Set(Array.from({ length: 100 }, () => uniqueName('Tick Data/Test')));
    expect(names.size).toBe(100);
    for (const name of names) expect(name).toMatch(/^tick-data-test-[0-9a-f]{10}$/);
  });
});
