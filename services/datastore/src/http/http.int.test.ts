import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { ErrorRequestHandler } from 'express';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, SimulatedClock } from '@candlestream/core';
import type { AppErrorCode } from '@candlestream/core';
import type { Authenticator } from './auth.js';
import { createAuthenticator, principalOf, requireAuth } from './auth.js';
import type { RateLimiter } from './rate-limit.js';
import { createRateLimiter, rateLimit } from './rate-limit.js';

const SECRET = 'integration-secret-of-at-least-32-bytes';
const NOW_S = 1_700_000_000;
const HOUR_S = 3_600;
const REQUESTS_PER_MINUTE = 2;

const STATUS: Partial<Record<AppErrorCode, number>> = { UNAUTHENTICATED: 401, RATE_LIMITED: 429 };

/** Stands in for the app's error handler: AppError codes to statuses, `{"error": message}`. */
const renderError: ErrorRequestHandler = (error, _req, res, _next) => {
  const app = AppError.from(error);
  const status = STATUS[app.code] ?? 500;
  const retryAfterS = app.details?.['retryAfterS'];
  if (typeof retryAfterS === 'number') res.setHeader('Retry-After', String(retryAfterS));
  res.status(status).json({ error: app.message });
};

interface Running {
  server: Server;
  url: string;
  clock: SimulatedClock;
}

async function start(auth: (clock: SimulatedClock) => Authenticator): Promise<Running> {
  const clock = new SimulatedClock(NOW_S * 1_000);
  const limiter: RateLimiter = createRateLimiter({ requestsPerMinute: REQUESTS_PER_MINUTE });
  const app = express();
  app.use(requireAuth(auth(clock)), rateLimit(limiter));
  app.get('/whoami', (_req, res) => {
    res.json({ subject: principalOf(res.locals)?.subject ?? null });
  });
  app.use(renderError);
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, clock };
}

async function stop(running: Running | undefined): Promise<void> {
  if (!running) return;
  running.server.closeAllConnections();
  await new Promise<void>((resolve, reject) =>
    running.server.close((error) => (error ? reject(error) : resolve())),
  );
}

async function get(running: Running, token?: string) {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: token };
  const response = await fetch(`${running.url}/whoami`, { headers });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    header: (name: string) => response.headers.get(name),
  };
}

const bearer = (sub: string, claims: Record<string, unknown> = {}) =>
  `Bearer ${jwt.sign({ sub, iat: NOW_S, exp: NOW_S + HOUR_S, ...claims }, SECRET)}`;

describe('requireAuth + rateLimit over HTTP, jwt mode', () => {
  let running: Running | undefined;
  const app = () => running as Running;
  beforeAll(async () => {
    running = await start((clock) =>
      createAuthenticator({ mode: 'jwt', jwtSecret: SECRET, clock }),
    );
  });
  afterAll(() => stop(running));

  it('answers 401 with a JSON error for a missing, malformed or expired token', async () => {
    const missing = await get(app());
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({ error: 'missing token: send "Authorization: Bearer <token>"' });
    expect(missing.header('ratelimit-limit')).toBeNull(); // refused before the limiter

    expect((await get(app(), 'Basic dXNlcjpwYXNz')).status).toBe(401);

    const expired = await get(app(), bearer('alice', { exp: NOW_S - HOUR_S }));
    expect(expired.status).toBe(401);
    expect(expired.body).toEqual({ error: 'token expired at 2023-11-14T21:13:20.000Z' });
  });

  it('lets a valid token through with rate-limit headers, then answers 429 with Retry-After', async () => {
    const token = bearer('bob');
    const first = await get(app(), token);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ subject: 'bob' });
    expect(first.header('ratelimit-limit')).toBe(String(REQUESTS_PER_MINUTE));
    expect(first.header('ratelimit-remaining')).toBe('1');
    expect((await get(app(), token)).header('ratelimit-remaining')).toBe('0');

    const refused = await get(app(), token);
    expect(refused.status).toBe(429);
    // A minute's window: the rest of it, in whole seconds.
    expect(refused.body).toEqual({
      error: `too many requests; retry in ${refused.header('retry-after')} s`,
    });
    expect(Number(refused.header('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(Number(refused.header('retry-after'))).toBeLessThanOrEqual(60);
    expect(refused.header('ratelimit-remaining')).toBe('0');

    // Keyed by subject: another user from the same address still has a full budget.
    const carol = await get(app(), bearer('carol'));
    expect(carol.status).toBe(200);
    expect(carol.header('ratelimit-remaining')).toBe('1');
  });
});

describe('requireAuth + rateLimit over HTTP, auth off', () => {
  let running: Running | undefined;
  const app = () => running as Running;
  beforeAll(async () => {
    running = await start(() => createAuthenticator({ mode: 'off' }));
  });
  afterAll(() => stop(running));

  it('ignores credentials and limits by client address', async () => {
    const first = await get(app(), 'Bearer whatever');
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ subject: null });
    expect(first.header('ratelimit-remaining')).toBe('1');
    // Different (ignored) tokens, same address: the same budget.
    expect((await get(app())).status).toBe(200);
    const refused = await get(app(), 'Bearer another');
    expect(refused.status).toBe(429);
    expect(Number(refused.header('retry-after'))).toBeGreaterThanOrEqual(59);
  });
});
