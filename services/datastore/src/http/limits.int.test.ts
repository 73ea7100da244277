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
import { waitUntil } from '@candlestream/testkit';
import jwt from 'jsonwebtoken';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { AppDeps } from '../app.js';
import { createApp } from '../app.js';
import type { BarService } from '../bars.js';
import type { StreamHub } from '../stream/hub.js';
import { attachStream } from '../stream/hub.js';
import type { SymbolRegistry } from '../symbols.js';
import { createAuthenticator } from './auth.js';
import { ConcurrencyGate } from './concurrency.js';
import type { TrustProxy } from './rate-limit.js';
import { admitUpgrade, createRateLimiter } from './rate-limit.js';

const REQUESTS_PER_MINUTE = 3;
const SECRET = 'limits-test-secret-of-at-least-32-bytes';

interface Running {
  server: Server;
  hub: StreamHub;
  url: string;
  port: number;
}

const running: Running[] = [];

/** The app and the stream hub wired as service.ts wires them, on one limiter. */
async function start(overrides: Partial<AppDeps> = {}): Promise<Running> {
  const deps: AppDeps = {
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
  };
  const app = createApp(deps);
  const server = createServer(app);
  const hub = attachStream({
    server,
    feed: { current: () => Promise.resolve(undefined), onUpdate: () => () => undefined },
    logger: deps.logger,
    authenticate: admitUpgrade({
      auth: deps.auth,
      limiter: deps.limiter,
      trust: app.get('trust proxy fn') as TrustProxy,
    }),
    isKnownSymbol: () => true,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const r = { server, hub, port, url: `http://127.0.0.1:${port}` };
  running.push(r);
  return r;
}

afterEach(async () => {
  for (const r of running.splice(0)) {
    await r.hub.close();
    r.server.closeAllConnections();
    await new Promise<void>((resolve) => r.server.close(() => resolve()));
  }
});

async function time(r: Running, headers: Record<string, string> = {}) {
  const response = await fetch(`${r.url}/udf/time`, { headers });
  await response.text();
  return { status: response.status, retryAfter: response.headers.get('retry-after') };
}

/** The upgrade's answer: 101 when the socket opened (then closed), else the refusal's status. */
function upgradeAnswer(
  r: Running,
  headers: Record<string, string> = {},
): Promise<{ status: number; retryAfter?: string | undefined }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${r.port}/stream`, { headers });
    ws.on('unexpected-response', (_req, res) =>
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] }),
    );
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('error', () => undefined);
  });
}

const upgrade = async (r: Running, headers: Record<string, string> = {}): Promise<number> =>
  (await upgradeAnswer(r, headers)).status;

const jwtAuth = () => createAuthenticator({ mode: 'jwt', jwtSecret: SECRET });
const bearer = (sub: string) =>
  `Bearer ${jwt.sign({ sub }, SECRET, { algorithm: 'HS256', expiresIn: 60 })}`;

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

describe('failed logins count against the client address (AUTH_MODE=jwt)', () => {
  it('answers 429 with Retry-After once bad or missing tokens used up the address budget', async () => {
    const r = await start({ auth: jwtAuth() });
    const answers = [];
    for (let i = 0; i < REQUESTS_PER_MINUTE + 2; i++) {
      answers.push(await time(r, i === 0 ? {} : { authorization: `Bearer guess-${i}` }));
    }
    expect(answers.map((a) => a.status)).toEqual([401, 401, 401, 429, 429]);
    expect(Number(answers[4]?.retryAfter)).toBeGreaterThanOrEqual(59);
    // A valid token has its own budget (its subject), whatever the address did.
    expect((await time(r, { authorization: bearer('alice') })).status).toBe(200);
  });
});

describe('/stream upgrades share the API limits', () => {
  it('refuses an upgrade with 429 once the client used up its budget, before upgrading', async () => {
    const r = await start();
    expect((await time(r)).status).toBe(200);
    expect((await time(r)).status).toBe(200);
    expect(await upgrade(r)).toBe(101);
    const refused = await upgradeAnswer(r);
    expect(refused.status).toBe(429);
    // Regression: the upgrade's 429 said when to come back no more than its body did.
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect((await time(r)).status).toBe(429);
  });

  it('counts refused tokens on upgrades against the address too (AUTH_MODE=jwt)', async () => {
    const r = await start({ auth: jwtAuth() });
    const statuses = [];
    for (let i = 0; i < REQUESTS_PER_MINUTE + 1; i++) {
      statuses.push(await upgrade(r, { authorization: `Bearer guess-${i}` }));
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect(await upgrade(r, { authorization: bearer('alice') })).toBe(101);
  });
});

describe('concurrent history work is bounded per client and in total', () => {
  /** BTC-USD history waits until `release()`; ETH-USD answers at once. */
  function slowBars() {
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started = 0;
    const bars = {
      maxBars: 1_000,
      ohlcv: async (symbol: string) => {
        started += 1;
        if (symbol === 'BTC-USD') await held;
        return { pieces: [], partial: false };
      },
    } as unknown as BarService;
    return { bars, release, started: () => started };
  }
  const ohlcv = async (r: Running, client: string, symbol: string) => {
    const started = performance.now();
    const response = await fetch(
      `${r.url}/ohlcv?symbol=${symbol}&interval=1m&startDate=2024-01-01T00:00:00Z&endDate=2024-01-04T00:00:00Z`,
      { headers: { 'x-forwarded-for': client } },
    );
    await response.text();
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      ms: performance.now() - started,
    };
  };
  const common = (bars: BarService, history: ConcurrencyGate): Partial<AppDeps> => ({
    bars,
    symbols: { has: () => Promise.resolve(true) } as unknown as SymbolRegistry,
    limiter: createRateLimiter({ requestsPerMinute: 1_000 }),
    trustProxy: ['loopback'],
    history,
  });

  it('a burst from one client: the excess gets 429 with Retry-After at once, another client is served', async () => {
    const slow = slowBars();
    const r = await start(
      common(slow.bars, new ConcurrencyGate({ perClient: 2, total: 3, queueMs: 30_000 })),
    );
    const answers: Awaited<ReturnType<typeof ohlcv>>[] = [];
    const burst = Array.from({ length: 10 }, () =>
      ohlcv(r, '198.51.100.1', 'BTC-USD').then((a) => answers.push(a)),
    );
    // Two run and two wait; the other six are refused without waiting for any of them.
    await waitUntil('six refused', () => answers.length === 6, 10_000);
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(429));
    expect(answers.every((a) => a.retryAfter === '1')).toBe(true);
    expect(slow.started()).toBe(2);

    // Another client still has a slot of the total while the burst holds its own share.
    const other = await ohlcv(r, '198.51.100.2', 'ETH-USD');
    expect(other.status).toBe(200);

    slow.release();
    await Promise.all(burst);
    expect(answers.slice(6).map((a) => a.status)).toEqual([200, 200, 200, 200]);
  });

  it('the whole process busy: a request waits briefly, then 503 with Retry-After', async () => {
    const slow = slowBars();
    const r = await start(
      common(slow.bars, new ConcurrencyGate({ perClient: 2, total: 2, queueMs: 100 })),
    );
    const running = [ohlcv(r, '198.51.100.1', 'BTC-USD'), ohlcv(r, '198.51.100.2', 'BTC-USD')];
    await waitUntil('both running', () => slow.started() === 2, 10_000);
    const busy = await ohlcv(r, '198.51.100.3', 'ETH-USD');
    expect(busy.status).toBe(503);
    expect(busy.retryAfter).toBe('1');
    slow.release();
    expect((await Promise.all(running)).map((a) => a.status)).toEqual([200, 200]);
    expect((await ohlcv(r, '198.51.100.3', 'ETH-USD')).status).toBe(200);
  });
});
