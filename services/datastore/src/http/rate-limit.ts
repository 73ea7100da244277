/**
 * Per-client request limits on rate-limiter-flexible: a fixed window of `requestsPerMinute`
 * requests per client and minute, counted in Redis when the datastore has one (so every replica
 * shares one budget per client), in process memory otherwise. While Redis is unreachable each
 * replica falls back to counting in its own memory (the library's insurance limiter), so an
 * outage neither refuses everyone nor lifts the limit.
 */
import type { RequestHandler } from 'express';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { AppError, MINUTE_MS, SECOND_MS } from '@candlestream/core';
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
  const limiter: RateLimiterAbstract = options.redis
    ? new RateLimiterRedis({
        ...common,
        storeClient: options.redis,
        // Not connected (yet, or any more): count in memory instead of waiting on Redis.
        rejectIfRedisNotReady: true,
        insuranceLimiter: memory,
      })
    : memory;
  return {
    limit: points,
    async take(key) {
      try {
        const result = await limiter.consume(key);
        return { ok: true, remaining: result.remainingPoints };
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err;
        return { ok: false, retryAfterS: Math.max(1, Math.ceil(err.msBeforeNext / SECOND_MS)) };
      }
    },
  };
}

/**
 * Keys on the authenticated subject when there is one, else on the client address (`req.ip`:
 * behind a proxy the app must set `trust proxy`, or every client shares the proxy's budget).
 */
export function rateLimit(limiter: RateLimiter): RequestHandler {
  return (req, res, next) => {
    const principal = principalOf(res.locals);
    // Prefixes keep a subject that looks like an address from sharing that address's budget.
    const key =
      principal !== undefined && principal.subject !== ANONYMOUS_SUBJECT
        ? `sub:${principal.subject}`
        : `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
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
      next(
        new AppError('RATE_LIMITED', `too many requests; retry in ${retryAfterS} s`, {
          details: { retryAfterS },
        }),
      );
    }, next);
  };
}
