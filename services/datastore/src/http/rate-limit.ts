/**
 * Per-client request limits on rate-limiter-flexible: a fixed window of `requestsPerMinute`
 * requests per client and minute, counted in Redis when the datastore has one (so every replica
 * shares one budget per client), in process memory otherwise. While Redis is unreachable each
 * replica falls back to counting in its own memory (the library's insurance limiter), so an
 * outage neither refuses everyone nor lifts the limit.
 */
import type { IncomingMessage } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import proxyaddr from 'proxy-addr';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError, MINUTE_MS, SECOND_MS } from '@candlestream/core';
import type { Authenticator, Principal } from './auth.js';
import { ANONYMOUS_SUBJECT, principalOf } from './auth.js';

export interface RateLimitOptions {
  /** Requests each client may make per window. */
  requestsPerMinute: number;
  /** The window; a minute unless a test shortens it. */
  windowMs?: number;
  /** An ioredis client (packages/cache createRedis): limits shared by every replica using it. */
  redis?: object | undefined;
  /** Redis key prefix (CACHE_PREFIX), so deployments sharing a Redis keep apart. */
  keyPrefix?: string;
  /**
   * packages/cache RedisGate: while it skips Redis, count in memory at once (a connected but
   * unanswering Redis would otherwise cost every request the command timeout).
   */
  gate?: { readonly available: boolean; fail(err: unknown): void } | undefined;
}

export type TakeResult = { ok: true; remaining: number } | { ok: false; retryAfterS: number };

export interface RateLimiter {
  /** Requests per window, for the `RateLimit-Limit` header. */
  readonly limit: number;
  /** Counts one request for `key`; `retryAfterS` is whole seconds until the window ends, >= 1. */
  take(key: string): Promise<TakeResult>;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0 || !Number.isInteger(value)) {
    throw new AppError(
      'INVALID_CONFIG',
      `rate limit ${name} must be a positive integer, got ${value}`,
    );
  }
  return value;
}

export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  const points = positive('requestsPerMinute', options.requestsPerMinute);
  const windowMs = positive('windowMs', options.windowMs ?? MINUTE_MS);
  const common = {
    points,
    duration: windowMs / SECOND_MS,
    keyPrefix: `${options.keyPrefix ?? 'candlestream:'}rate-limit`,
  };
  const memory = new RateLimiterMemory(common);
  const shared: RateLimiterAbstract | undefined = options.redis
    ? new RateLimiterRedis({
        ...common,
        storeClient: options.redis,
        // Not connected (yet, or any more): count in memory instead of waiting on Redis.
        rejectIfRedisNotReady: true,
      })
    : undefined;
  const { gate } = options;
  /** Redis's count, or memory's when Redis fails; the failure tells the gate, so the next skip it. */
  const consume = async (key: string): Promise<RateLimiterRes> => {
    if (!shared || (gate && !gate.available)) return memory.consume(key);
    try {
      return await shared.consume(key);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw err;
      gate?.fail(err);
      return memory.consume(key);
    }
  };
  return {
    limit: points,
    async take(key) {
      try {
        const result = await consume(key);
        return { ok: true, remaining: result.remainingPoints };
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        return { ok: false, retryAfterS: Math.max(1, Math.ceil(err.msBeforeNext / SECOND_MS)) };
      }
    },
  };
}

/** Express's compiled `trust proxy` setting (`app.get('trust proxy fn')`): is this hop a proxy? */
export type TrustProxy = (address: string, hop: number) => boolean;

/**
 * The client's address as express's `req.ip` finds it: proxy-addr (what express itself calls)
 * with the same compiled `trust proxy`. For requests express never sees: WebSocket upgrades.
 */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  return proxyaddr(req, trust);
}

/**
 * A budget's key: the authenticated subject when there is one, else the client address (behind a
 * proxy the app must trust it, TRUST_PROXY, or every client shares the proxy's budget). Prefixes
 * keep a subject that looks like an address from sharing that address's budget.
 */
export function limitKey(principal: Principal | undefined, address: string | undefined): string {
  return principal !== undefined && principal.subject !== ANONYMOUS_SUBJECT
    ? `sub:${principal.subject}`
    : `ip:${address ?? 'unknown'}`;
}

function limited(retryAfterS: number): AppError {
  return new AppError('RATE_LIMITED', `too many requests; retry in ${retryAfterS} s`, {
    details: { retryAfterS },
  });
}

/** Counts one request for `key`; throws RATE_LIMITED (with `details.retryAfterS`) when over. */
export async function enforceLimit(limiter: RateLimiter, key: string): Promise<void> {
  const result = await limiter.take(key);
  if (!result.ok) throw limited(result.retryAfterS);
}

/** Counts one request against the key `limitKey` gives; over the limit, 429 with Retry-After. */
export function rateLimit(limiter: RateLimiter): RequestHandler {
  return (req, res, next) => {
    const key = limitKey(principalOf(res.locals), req.ip ?? req.socket.remoteAddress);
    limiter.take(key).then((result) => {
      res.setHeader('RateLimit-Limit', String(limiter.limit));
      if (result.ok) {
        res.setHeader('RateLimit-Remaining', String(result.remaining));
        next();
        return;
      }
      const { retryAfterS } = result;
      res.setHeader('RateLimit-Remaining', '0');
      res.setHeader('Retry-After', String(retryAfterS));
      next(limited(retryAfterS));
    }, next);
  };
}

/**
 * After `requireAuth`: a refused token (missing, bad, expired) counts against the client
 * address's budget, so guessing tokens is limited like any other request. Within the budget the
 * 401 goes on unchanged; over it, 429 with Retry-After.
 */
export function limitFailedAuth(limiter: RateLimiter): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (!AppError.is(err, 'UNAUTHENTICATED')) {
      next(err);
      return;
    }
    limiter.take(limitKey(undefined, req.ip ?? req.socket.remoteAddress)).then((result) => {
      if (result.ok) {
        next(err);
        return;
      }
      res.setHeader('Retry-After', String(result.retryAfterS));
      next(limited(result.retryAfterS));
    }, next);
  };
}

/**
 * The stream hub's `authenticate` hook: the HTTP API's auth and budgets for WebSocket upgrades,
 * keyed the same way (the same `trust proxy`), so /stream is no way around either. A refused
 * token counts against the address, and over a limit the upgrade is refused with 429.
 */
export function admitUpgrade(options: {
  auth: Authenticator;
  limiter: RateLimiter;
  trust: TrustProxy;
}): (req: IncomingMessage) => Promise<void> {
  const { auth, limiter, trust } = options;
  return async (req) => {
    const address = clientAddress(req, trust);
    let principal: Principal | undefined;
    if (auth.mode === 'jwt') {
      // Browsers cannot set headers on a WebSocket: `?token=` stands in for Authorization.
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
      try {
        principal = auth.authenticate(
          req.headers.authorization ?? (token ? `Bearer ${token}` : undefined),
        );
      } catch (err) {
        await enforceLimit(limiter, limitKey(undefined, address));
        throw err;
      }
    }
    await enforceLimit(limiter, limitKey(principal, address));
  };
}
