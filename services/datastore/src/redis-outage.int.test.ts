/**
 * Regression: with Redis away every API request took 1.7-2.1 s (the chunk cache's and the live
 * store's command timeouts, 1 s each) and /health said ok. After one failure the datastore now
 * skips Redis (packages/cache RedisGate), answers from storage in normal time, reports degraded,
 * and uses Redis again once it answers a ping.
 */
import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { startBroker } from '@candlestream/broker';
import type { RunningBroker } from '@candlestream/broker';
import { DAY_MS, floorBucket, toIso } from '@candlestream/core';
import { migrate } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import type { TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, uniqueName, waitUntil } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDatastoreConfig } from './config.js';
import { startDatastore } from './service.js';

const services = needServices(['postgres', 'redis']);
const logger = silentLogger();
/** Well under the old 1.7-2.1 s, with room for a loaded CI machine. */
const FAST_MS = 600;
/** The gate pings every 5 s (REDIS_RETRY_MS); a ping may wait 1 s; slack for CI. */
const RECOVERY_MS = 15_000;

/** A TCP proxy that can stop forwarding, keeping connections open: a Redis that hangs. */
interface FreezableProxy {
  port: number;
  freeze(): void;
  unfreeze(): void;
  close(): Promise<void>;
}

async function freezableProxy(target: { host: string; port: number }): Promise<FreezableProxy> {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk) => to.write(chunk));
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
      if (frozen) from.pause();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    freeze: () => {
      frozen = true;
      for (const s of sockets) s.pause();
    },
    unfreeze: () => {
      frozen = false;
      for (const s of sockets) s.resume();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(services.skip)('datastore: Redis outage', () => {
  let broker: RunningBroker;
  let db: TestDatabase;
  const env: Record<string, string> = {};
  // A closed day, so its bars go through the chunk cache (MGET) and the live store (HGET).
  const day = floorBucket(Date.now() - 3 * DAY_MS, '1d');
  const path = `/ohlcv?symbol=BTC-USD&interval=1m&startDate=${toIso(day)}&endDate=${toIso(day + DAY_MS)}`;

  beforeAll(async () => {
    broker = await startBroker({ port: 0 });
    db = await createTestDatabase(services.get('postgres').url, 'ds_redis');
    await migrate({ url: db.url }, { logger });
    Object.assign(env, {
      KAFKA_BROKERS: broker.brokers,
      DATABASE_URL: db.url,
      CACHE_PREFIX: `${uniqueName('ds_redis')}:`,
      PORT: '0',
      SYMBOLS: 'BTC-USD',
      // Rendered pages in memory would answer the closed day without Redis: these tests are
      // about the requests that do ask it.
      PREPARED_CACHE_MB: '0',
    });
  });
  afterAll(async () => {
    await db?.drop();
    await broker?.stop();
  });

  async function timed(url: string): Promise<{ status: number; ms: number }> {
    const started = performance.now();
    const response = await fetch(`${url}${path}`);
    await response.text();
    return { status: response.status, ms: performance.now() - started };
  }

  it('regression: a hanging Redis costs one slow request, not every one; health degraded, then ok again', async () => {
    const target = new URL(services.get('redis').url);
    const proxy = await freezableProxy({ host: target.hostname, port: Number(target.port) });
    const datastore = await startDatastore(
      loadDatastoreConfig({ ...env, REDIS_URL: `redis://127.0.0.1:${proxy.port}` }),
      logger,
    );
    try {
      const url = `http://127.0.0.1:${datastore.port}`;
      await waitUntil('live', () => datastore.health().status === 'ok', 60_000);
      expect((await timed(url)).status).toBe(200);

      proxy.freeze();
      expect((await timed(url)).status).toBe(200); // pays the command timeout once
      for (let i = 0; i < 5; i++) {
        const answer = await timed(url);
        expect(answer.status).toBe(200);
        expect(answer.ms).toBeLessThan(FAST_MS);
      }
      expect(datastore.health()).toMatchObject({
        status: 'degraded',
        checks: { problems: { redis: expect.any(String) } },
      });

      proxy.unfreeze();
      await waitUntil('health ok again', () => datastore.health().status === 'ok', RECOVERY_MS);
      expect(datastore.health().checks['redis']).toBe('ok');
      const hitsBefore = (datastore.health().checks['cacheStats'] as { hits: number }).hits;
      expect((await timed(url)).status).toBe(200);
      // Redis is read again: the day cached before the outage is a hit.
      expect((datastore.health().checks['cacheStats'] as { hits: number }).hits).toBeGreaterThan(
        hitsBefore,
      );
    } finally {
      proxy.unfreeze();
      await datastore.stop();
      await proxy.close();
    }
  }, 90_000);

  it('an unreachable Redis from the start: answers in normal time and health degraded', async () => {
    const datastore = await startDatastore(
      loadDatastoreConfig({ ...env, REDIS_URL: 'redis://127.0.0.1:1' }),
      logger,
    );
    try {
      const url = `http://127.0.0.1:${datastore.port}`;
      await waitUntil(
        'degraded by redis',
        () => {
          const checks = datastore.health().checks['problems'] as
            Record<string, unknown> | undefined;
          return checks?.['redis'] !== undefined;
        },
        60_000,
      );
      for (let i = 0; i < 3; i++) {
        const answer = await timed(url);
        expect(answer.status).toBe(200);
        expect(answer.ms).toBeLessThan(FAST_MS);
      }
      expect(datastore.health().status).toBe('degraded');
    } finally {
      await datastore.stop();
    }
  }, 90_000);
});
