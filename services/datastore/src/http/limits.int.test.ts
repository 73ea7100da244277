/**
 * The API's limits over real HTTP, on the app as the datastore builds it (routes, auth, limiter,
 * error handler): which address a budget belongs to (TRUST_PROXY), failed logins, /stream.
 * Storage is not needed: `/udf/time` is behind auth and limits and reads only the clock.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '@candlestream/logger';
import { Metrics } from '@candlestream/runtime';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppDeps } from '../app.js';
import { createApp } from '../app.js';
import type { BarService } from '../bars.js';
import type { SymbolRegistry } from '../symbols.js';
import { createAuthenticator } from './auth.js';
import { createRateLimiter } from './rate-limit.js';

const REQUESTS_PER_MINUTE = 3;

interface Running {
  server: Server;
  url: string;
}

const running: Running[] = [];

async function start(overrides: Partial<AppDeps> = {}): Promise<Running> {
  const app = createApp({
    // Never reached by these requests: /udf/time answers from the clock.
    bars: { maxBars: 1_000 } as BarService,
    symbols: {} as SymbolRegistry,
    now: () => 1_700_000_000_000,
    auth: createAuthenticator({ mode: 'off' }),
    limiter: createRateLimiter({ requestsPerMinute: REQUESTS_PER_MINUTE }),
    health: () => ({ status: 'ok', service: 'datastore', state: 'live.healthy', checks: {} }),
    metrics: new Metrics('datastore-limits-test'),
    logger: silentLogger(),
    ...overrides,
  });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const r = { server, url: `http://127.0.0.1:${port}` };
  running.push(r);
  return r;
}

afterEach(async () => {
  for (const r of running.splice(0)) {
    r.server.closeAllConnections();
    await new Promise<void>((resolve) => r.server.close(() => resolve()));
  }
});

/** Statuses of `n` requests to /udf/time, each from a different forwarded address. */
async function rotatingForwardedFor(r: Running, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const response = await fetch(`${r.url}/udf/time`, {
      headers: { 'x-forwarded-for': `203.0.113.${i + 1}` },
    });
    await response.text();
    statuses.push(response.status);
  }
  return statuses;
}

describe('rate limit key and X-Forwarded-For (TRUST_PROXY)', () => {
  it('a rotating X-Forwarded-For no longer gets a new budget per request when no proxy is trusted', async () => {
    const statuses = await rotatingForwardedFor(await start(), REQUESTS_PER_MINUTE + 2);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
  });

  it('with TRUST_PROXY=loopback, the forwarded address is the client', async () => {
    const statuses = await rotatingForwardedFor(
      await start({ trustProxy: ['loopback'] }),
      REQUESTS_PER_MINUTE + 2,
    );
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
  });
});
