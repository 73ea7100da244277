/**
 * Bearer-token authentication for the HTTP API and the WebSocket stream (CONTRACT: AUTH_MODE,
 * JWT_SECRET for HS256, JWT_PUBLIC_KEY for RS256). Every refusal is an AppError UNAUTHENTICATED
 * whose message says what is wrong and never repeats the token.
 */
import { createPublicKey, createSecretKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { RequestHandler } from 'express';
import jwt from 'jsonwebtoken';
import type { Algorithm } from 'jsonwebtoken';
import { AppError, SECOND_MS, systemClock, toIso } from '@candlestream/core';
import type { Clock } from '@candlestream/core';

export interface AuthOptions {
  mode: 'off' | 'jwt';
  /** HS256 shared secret. */
  jwtSecret?: string;
  /** RS256 public key, PEM. */
  jwtPublicKey?: string;
  /** Leeway for exp and nbf between our clock and the issuer's; default 5 s. */
  clockToleranceS?: number;
  clock?: Clock;
}

export interface Principal {
  /** The `sub` claim, or 'anonymous' when authentication is off. */
  subject: string;
  claims: Record<string, unknown>;
}

export interface Authenticator {
  readonly mode: 'off' | 'jwt';
  /**
   * From an Authorization header value (`Bearer <token>`) or a bare token (the WebSocket
   * `?token=` query). Throws AppError UNAUTHENTICATED.
   */
  authenticate(authorization: string | undefined): Principal;
}

export const ANONYMOUS_SUBJECT = 'anonymous';
export const DEFAULT_CLOCK_TOLERANCE_S = 5;

/** Why a token was refused, in `details.reason`: stable for metrics and tests, unlike messages. */
export type AuthFailureReason =
  'missing' | 'malformed' | 'algorithm' | 'signature' | 'expired' | 'not_yet_valid' | 'claims';

// RFC 7235: the scheme is case-insensitive; a token68 has no spaces.
const BEARER_RE = /^bearer(?:[ \t]+(\S*))?[ \t]*$/i;

function refuse(reason: AuthFailureReason, message: string): AppError {
  // No `cause`: jsonwebtoken's own errors may quote the decoded token (JSON.parse messages do).
  return new AppError('UNAUTHENTICATED', message, { details: { reason } });
}

/** Splits `Bearer <token>` or accepts a bare token; anything else with a scheme is malformed. */
function extractToken(authorization: string | undefined): string {
  const value = authorization?.trim() ?? '';
  if (value === '') {
    throw refuse('missing', 'missing token: send "Authorization: Bearer <token>"');
  }
  const bearer = BEARER_RE.exec(value);
  if (bearer) {
    const token = bearer[1] ?? '';
    if (token === '') {
      throw refuse('malformed', 'malformed Authorization header: Bearer without a token');
    }
    return token;
  }
  if (/\s/.test(value)) {
    throw refuse('malformed', 'malformed Authorization header: expected "Bearer <token>"');
  }
  return value;
}

interface VerificationKey {
  algorithm: Algorithm;
  key: KeyObject;
}

function configError(message: string): AppError {
  return new AppError('INVALID_CONFIG', message);
}

/** One key per algorithm, so an HS256 token can only ever be checked against the HMAC secret. */
function loadKeys(options: AuthOptions): VerificationKey[] {
  const keys: VerificationKey[] = [];
  if (options.jwtSecret) {
    keys.push({ algorithm: 'HS256', key: createSecretKey(Buffer.from(options.jwtSecret, 'utf8')) });
  }
  if (options.jwtPublicKey) {
    let key: KeyObject;
    try {
      key = createPublicKey(options.jwtPublicKey);
    } catch {
      throw configError('JWT_PUBLIC_KEY is not a valid PEM public key');
    }
    if (key.asymmetricKeyType !== 'rsa') {
      throw configError(
        `JWT_PUBLIC_KEY must be an RSA key for RS256, not ${key.asymmetricKeyType}`,
      );
    }
    keys.push({ algorithm: 'RS256', key });
  }
  if (keys.length === 0) {
    throw configError('AUTH_MODE=jwt needs JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256)');
  }
  return keys;
}

/** Maps jsonwebtoken's failures onto our messages; its own messages are never passed through. */
function translate(error: unknown, accepted: string): AppError {
  if (error instanceof jwt.TokenExpiredError) {
    return refuse('expired', `token expired at ${toIso(error.expiredAt.getTime())}`);
  }
  if (error instanceof jwt.NotBeforeError) {
    return refuse('not_yet_valid', `token not valid until ${toIso(error.date.getTime())}`);
  }
  if (error instanceof jwt.JsonWebTokenError) {
    switch (error.message) {
      case 'invalid signature':
        return refuse('signature', 'invalid token signature');
      case 'invalid algorithm':
        return refuse('algorithm', `token algorithm not accepted; accepted: ${accepted}`);
      case 'invalid exp value':
      case 'invalid nbf value':
        return refuse('claims', 'token exp/nbf claims must be numbers');
    }
  }
  return refuse('malformed', 'malformed token: not a valid JWT');
}

function claimsOf(payload: unknown): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw refuse('claims', 'token payload is not a JSON object');
  }
  return payload as Record<string, unknown>;
}

export function createAuthenticator(options: AuthOptions): Authenticator {
  if (options.mode === 'off') {
    return {
      mode: 'off',
      authenticate: () => ({ subject: ANONYMOUS_SUBJECT, claims: {} }),
    };
  }
  const toleranceS = options.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S;
  if (!Number.isFinite(toleranceS) || toleranceS < 0) {
    throw configError(`clock tolerance must be a number of seconds >= 0, got ${toleranceS}`);
  }
  const clock = options.clock ?? systemClock;
  const keys = loadKeys(options);
  const accepted = keys.map((k) => k.algorithm).join(', ');

  return {
    mode: 'jwt',
    authenticate(authorization) {
      const token = extractToken(authorization);
      // The header is attacker-written JSON: `alg` may be anything, not just a string.
      let alg: unknown;
      try {
        alg = jwt.decode(token, { complete: true })?.header.alg;
      } catch {
        alg = undefined;
      }
      if (typeof alg !== 'string') throw refuse('malformed', 'malformed token: not a valid JWT');
      if (alg.toLowerCase() === 'none') {
        throw refuse(
          'algorithm',
          `unsigned tokens (alg "none") are not accepted; accepted: ${accepted}`,
        );
      }
      // Unknown algorithms still go through verify, pinned to one we hold, so it refuses them.
      const chosen = keys.find((k) => k.algorithm === alg) ?? keys[0];
      if (chosen === undefined) throw new AppError('INTERNAL', 'no verification key loaded');
      let payload: unknown;
      try {
        payload = jwt.verify(token, chosen.key, {
          algorithms: [chosen.algorithm],
          clockTolerance: toleranceS,
          // jsonwebtoken reads the wall clock when clockTimestamp is 0 (falsy); 1 s keeps it ours.
          clockTimestamp: Math.max(1, Math.floor(clock.now() / SECOND_MS)),
        });
      } catch (error) {
        throw translate(error, accepted);
      }
      const claims = claimsOf(payload);
      const subject = claims['sub'];
      if (typeof subject !== 'string' || subject === '') {
        throw refuse('claims', 'token has no subject (sub) claim');
      }
      return { subject, claims };
    },
  };
}

/** The principal `requireAuth` left on `res.locals`, if any, checked rather than cast from `any`. */
export function principalOf(locals: Record<string, unknown>): Principal | undefined {
  const value = locals['principal'];
  if (typeof value !== 'object' || value === null) return undefined;
  const { subject, claims } = value as Partial<Principal>;
  if (typeof subject !== 'string' || typeof claims !== 'object' || claims === null) {
    return undefined;
  }
  return { subject, claims };
}

/** Mode off: passes through. Mode jwt: sets `res.locals.principal` or hands the error on. */
export function requireAuth(auth: Authenticator): RequestHandler {
  return (req, res, next) => {
    if (auth.mode === 'off') {
      next();
      return;
    }
    try {
      res.locals['principal'] = auth.authenticate(req.headers.authorization);
    } catch (error) {
      next(error);
      return;
    }
    next();
  };
}
