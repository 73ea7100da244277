/**
 * Per-client token buckets held in memory: one process, no coordination. A bucket holds up to
 * `burst` tokens and refills continuously at `requestsPerMinute`; each request takes one.
 */
import type { RequestHandler } from 'express';
import { AppError, MINUTE_MS, SECOND_MS, systemClock } from '@candlestream/core';
import type { Clock, EpochMs } from '@candlestream/core';
import { ANONYMOUS_SUBJECT, principalOf } from './auth.js';

export interface RateLimitOptions {
  /** Refill rate. */
  requestsPerMinute: number;
  /** Bucket size; default = requestsPerMinute. */
  burst?: number;
  /** Default systemClock; tests use SimulatedClock. */
  clock?: Clock;
  /** Bound on tracked keys; the least recently seen is evicted beyond it. */
  maxClients?: number;
}

export type TakeResult = { ok: true; remaining: number } | { ok: false; retryAfterS: number };

export interface RateLimiter {
  /** The bucket size, for the `RateLimit-Limit` header. */
  readonly limit: number;
  /** Takes one token for `key`; `retryAfterS` is whole seconds, >= 1. */
  take(key: string): TakeResult;
}

export const DEFAULT_MAX_CLIENTS = 100_000;
/** Slack for float refill sums, so a token due at exactly t is granted at t. */
const TOKEN_EPSILON = 1e-9;

interface Bucket {
  tokens: number;
  updatedMs: EpochMs;
}

function positive(name: string, value: number, integer: boolean): number {
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    const kind = integer ? 'a positive integer' : 'a positive number';
    throw new AppError('INVALID_CONFIG', `rate limit ${name} must be ${kind}, got ${value}`);
  }
  return value;
}

export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  const perMinute = positive('requestsPerMinute', options.requestsPerMinute, false);
  const capacity = positive('burst', options.burst ?? Math.max(1, Math.floor(perMinute)), true);
  const maxClients = positive('maxClients', options.maxClients ?? DEFAULT_MAX_CLIENTS, true);
  const clock = options.clock ?? systemClock;
  // Map iteration order is insertion order: re-inserting on every take keeps it least-recent-first.
  const buckets = new Map<string, Bucket>();

  return {
    limit: capacity,
    take(key) {
      const now = clock.now();
      const bucket = buckets.get(key);
      let tokens = capacity;
      if (bucket) {
        buckets.delete(key);
        // A clock stepping backwards grants nothing rather than a negative refill.
        const elapsedMs = Math.max(0, now - bucket.updatedMs);
        // Multiply before dividing: whole-token refills then come out exact.
        tokens = Math.min(capacity, bucket.tokens + (elapsedMs * perMinute) / MINUTE_MS);
      } else if (buckets.size >= maxClients) {
        const oldest = buckets.keys().next();
        if (oldest.done !== true) buckets.delete(oldest.value);
      }
      if (tokens >= 1 - TOKEN_EPSILON) {
        tokens = Math.max(0, tokens - 1);
        buckets.set(key, { tokens, updatedMs: now });
        return { ok: true, remaining: Math.floor(tokens + TOKEN_EPSILON) };
      }
      buckets.set(key, { tokens, updatedMs: now });
      const waitMs = ((1 - tokens) * MINUTE_MS) / perMinute;
      return { ok: false, retryAfterS: Math.max(1, Math.ceil(waitMs / SECOND_MS)) };
    },
  };
}

/**
 * Keys on the authenticated subject when there is one, else on the client address (`req.ip`:
 * behind a proxy the app must set `trust proxy`, or every client shares the proxy's bucket).
 */
export function rateLimit(limiter: RateLimiter): RequestHandler {
  return (req, res, next) => {
    const principal = principalOf(res.locals);
    // Prefixes keep a subject that looks like an address from sharing that address's bucket.
    const key =
      principal !== undefined && principal.subject !== ANONYMOUS_SUBJECT
        ? `sub:${principal.subject}`
        : `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
    const result = limiter.take(key);
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
  };
}
