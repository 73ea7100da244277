import { existsSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { silentLogger } from '@candlestream/logger';
import type { ServiceKind, Started } from './infra.js';

const PROBE_TIMEOUT_MS = 2_000;

/** This machine's services (see the node-svc machine notes): trust auth on loopback. */
export const LOCAL_POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';

export async function probePostgres(url: string): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function probeRedis(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // ioredis rejects with a bare "Connection is closed"; the error event has the real cause.
  let cause: Error | undefined;
  redis.on('error', (err: Error) => (cause ??= err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw cause ?? err;
  } finally {
    redis.disconnect();
  }
}

/** True when a Docker engine answers `GET /_ping` (the client alone is not enough). */
export async function dockerAvailable(dockerHost: string | undefined): Promise<boolean> {
  let target: http.RequestOptions;
  if (dockerHost?.startsWith('tcp://')) {
    const u = new URL(dockerHost.replace(/^tcp:/, 'http:'));
    target = { host: u.hostname, port: u.port };
  } else {
    const socketPath = dockerHost?.startsWith('unix://')
      ? dockerHost.slice('unix://'.length)
      : '/var/run/docker.sock';
    if (!existsSync(socketPath)) return false;
    target = { socketPath };
  }
  return new Promise((resolve) => {
    const req = http.get({ ...target, path: '/_ping', timeout: PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** A port nobody listens on right now (for a container's advertised Kafka address). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const noop = (): Promise<void> => Promise.resolve();

/** This machine's services, and the embedded broker started in-process. */
export async function startLocal(kind: ServiceKind): Promise<Started> {
  switch (kind) {
    case 'postgres':
      await probePostgres(LOCAL_POSTGRES_URL).catch((err: Error) => {
        throw new Error(`PostgreSQL at 127.0.0.1:5432 does not answer: ${err.message}`);
      });
      return { url: LOCAL_POSTGRES_URL, stop: noop };
    case 'redis':
      await probeRedis(LOCAL_REDIS_URL).catch((err: Error) => {
        throw new Error(`Redis at 127.0.0.1:6379 does not answer: ${err.message}`);
      });
      return { url: LOCAL_REDIS_URL, stop: noop };
    case 'kafka': {
      // The project's own Kafka-protocol broker, in this process, on a free port.
      const { startBroker } = await import('@candlestream/broker');
      const broker = await startBroker({ port: 0, logger: silentLogger() });
      return { url: broker.brokers, stop: () => broker.stop() };
    }
    case 'timescaledb':
      throw new Error('no TimescaleDB server on this machine; set TIMESCALEDB_URL');
    case 'pglite': {
      // No TimescaleDB server can be installed here: the PGlite build that carries it.
      const { spawnPgliteTimescale } = await import('./pglite.js');
      return spawnPgliteTimescale();
    }
  }
}
