import { createHmac, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { AppError, SimulatedClock } from '@candlestream/core';
import type { AuthFailureReason } from './auth.js';
import { createAuthenticator } from './auth.js';

const SECRET = 'test-secret-of-at-least-thirty-two-bytes!';
const NOW_S = 1_700_000_000; // 2023-11-14T22:13:20Z
const NOW_MS = NOW_S * 1_000;
const HOUR_S = 3_600;

const pemPair = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
const rsa = pemPair();
const otherRsa = pemPair();

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Builds a token by hand, for the shapes jsonwebtoken's sign refuses to make. */
function handMade(header: Record<string, unknown>, payload: object, hmacKey?: string): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const signature =
    hmacKey === undefined ? '' : createHmac('sha256', hmacKey).update(input).digest('base64url');
  return `${input}.${signature}`;
}

const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'alice',
  iat: NOW_S,
  exp: NOW_S + HOUR_S,
  ...extra,
});
const hs256 = (extra?: Record<string, unknown>, secret = SECRET) =>
  jwt.sign(claims(extra), secret, { algorithm: 'HS256' });
const rs256 = (privateKey = rsa.privateKey) =>
  jwt.sign(claims(), privateKey, { algorithm: 'RS256' });

function authenticator(
  keys: { secret?: boolean; publicKey?: boolean },
  clock = new SimulatedClock(NOW_MS),
) {
  return createAuthenticator({
    mode: 'jwt',
    ...(keys.secret ? { jwtSecret: SECRET } : {}),
    ...(keys.publicKey ? { jwtPublicKey: rsa.publicKey } : {}),
    clock,
  });
}

/** Asserts an UNAUTHENTICATED refusal with the given reason, and that no token text leaks. */
function expectRefused(run: () => unknown, reason: AuthFailureReason, message: RegExp, token = '') {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(AppError.is(caught, 'UNAUTHENTICATED')).toBe(true);
  const error = caught as AppError;
  expect(error.details).toEqual({ reason });
  expect(error.message).toMatch(message);
  for (const part of token.split('.').filter((p) => p.length > 0)) {
    expect(error.message).not.toContain(part);
  }
  expect(error.cause).toBeUndefined();
}

describe('createAuthenticator, jwt mode', () => {
  it('accepts a valid HS256 token, from a header or bare', () => {
    const auth = authenticator({ secret: true });
    const token = hs256({ scope: 'read' });
    const principal = auth.authenticate(`Bearer ${token}`);
    expect(principal.subject).toBe('alice');
    expect(principal.claims).toMatchObject({ sub: 'alice', scope: 'read' });
    expect(auth.authenticate(token).subject).toBe('alice');
    expect(auth.authenticate(`bearer  ${token} `).subject).toBe('alice');
  });

  it('accepts a valid RS256 token', () => {
    expect(authenticator({ publicKey: true }).authenticate(`Bearer ${rs256()}`).subject).toBe(
      'alice',
    );
  });

  it('accepts either algorithm when both keys are configured', () => {
    const auth = authenticator({ secret: true, publicKey: true });
    expect(auth.authenticate(hs256()).subject).toBe('alice');
    expect(auth.authenticate(rs256()).subject).toBe('alice');
  });

  it('judges expiry by the given clock, with tolerance, and says when it expired', () => {
    const clock = new SimulatedClock(NOW_MS);
    const auth = authenticator({ secret: true }, clock);
    const token = hs256({ exp: NOW_S + 60 });
    expect(auth.authenticate(token).subject).toBe('alice');
    clock.set((NOW_S + 60 + 4) * 1_000); // inside the default 5 s tolerance
    expect(auth.authenticate(token).subject).toBe('alice');
    clock.set((NOW_S + 60 + 5) * 1_000);
    expectRefused(
      () => auth.authenticate(token),
      'expired',
      /^token expired at 2023-11-14T22:14:20\.000Z$/,
      token,
    );
  });

  it('accepts a token whose expiry is past by the wall clock but not by the given clock', () => {
    const early = new SimulatedClock(Date.UTC(2001, 0, 1));
    const token = hs256({ iat: Date.UTC(2000, 0, 1) / 1_000, exp: Date.UTC(2002, 0, 1) / 1_000 });
    expect(authenticator({ secret: true }, early).authenticate(token).subject).toBe('alice');
  });

  it('refuses a token not yet valid (nbf in the future)', () => {
    const token = hs256({ nbf: NOW_S + HOUR_S });
    expectRefused(
      () => authenticator({ secret: true }).authenticate(token),
      'not_yet_valid',
      /^token not valid until 2023-11-14T23:13:20\.000Z$/,
      token,
    );
  });

  it('refuses a token whose payload was swapped (bad signature)', () => {
    const [header, , signature] = hs256().split('.');
    const forged = `${header}.${b64url(claims({ sub: 'admin' }))}.${signature}`;
    expectRefused(
      () => authenticator({ secret: true }).authenticate(forged),
      'signature',
      /^invalid token signature$/,
      forged,
    );
  });

  it('refuses tokens signed with another secret or another RSA key', () => {
    const wrongSecret = hs256({}, 'some-other-secret-also-long-enough!!');
    expectRefused(
      () => authenticator({ secret: true }).authenticate(wrongSecret),
      'signature',
      /signature/,
      wrongSecret,
    );
    const wrongKey = rs256(otherRsa.privateKey);
    expectRefused(
      () => authenticator({ publicKey: true }).authenticate(wrongKey),
      'signature',
      /signature/,
      wrongKey,
    );
  });

  it('refuses an unsigned alg "none" token, with or without a signature part', () => {
    const auth = authenticator({ secret: true, publicKey: true });
    const unsigned = handMade({ alg: 'none', typ: 'JWT' }, claims());
    expectRefused(() => auth.authenticate(unsigned), 'algorithm', /alg "none"/, unsigned);
    const fakeSig = `${unsigned}c2lnbmF0dXJl`;
    expectRefused(() => auth.authenticate(fakeSig), 'algorithm', /alg "none"/, fakeSig);
  });

  it('refuses HS256 signed with the RSA public key PEM (algorithm confusion)', () => {
    const confused = handMade({ alg: 'HS256', typ: 'JWT' }, claims(), rsa.publicKey);
    expectRefused(
      () => authenticator({ publicKey: true }).authenticate(confused),
      'algorithm',
      /^token algorithm not accepted; accepted: RS256$/,
      confused,
    );
    // With a secret configured too, HS256 is checked against the secret alone.
    expectRefused(
      () => authenticator({ secret: true, publicKey: true }).authenticate(confused),
      'signature',
      /signature/,
      confused,
    );
  });

  it('refuses an algorithm it holds no key for', () => {
    const hs512 = jwt.sign(claims(), SECRET, { algorithm: 'HS512' });
    expectRefused(
      () => authenticator({ secret: true }).authenticate(hs512),
      'algorithm',
      /accepted: HS256$/,
      hs512,
    );
  });

  it('refuses malformed headers and tokens', () => {
    const auth = authenticator({ secret: true });
    expectRefused(() => auth.authenticate('Basic dXNlcjpwYXNz'), 'malformed', /Bearer <token>/);
    expectRefused(() => auth.authenticate('Bearer'), 'malformed', /Bearer without a token/);
    expectRefused(() => auth.authenticate('Bearer   '), 'malformed', /Bearer without a token/);
    expectRefused(() => auth.authenticate('Bearer a.b.c d'), 'malformed', /Bearer <token>/);
    expectRefused(() => auth.authenticate('Bearer not-a-jwt'), 'malformed', /not a valid JWT/);
    const garbage = 'eyJub3QiOiJqc29u.e30x.c2ln';
    expectRefused(() => auth.authenticate(garbage), 'malformed', /not a valid JWT/, garbage);
    const numericAlg = handMade({ alg: 256 }, claims(), SECRET);
    expectRefused(() => auth.authenticate(numericAlg), 'malformed', /not a valid JWT/, numericAlg);
  });

  it('refuses a missing token', () => {
    const auth = authenticator({ secret: true });
    expectRefused(() => auth.authenticate(undefined), 'missing', /^missing token/);
    expectRefused(() => auth.authenticate('  '), 'missing', /^missing token/);
  });

  it('refuses a valid token without a subject', () => {
    const token = hs256({ sub: undefined });
    expectRefused(
      () => authenticator({ secret: true }).authenticate(token),
      'claims',
      /subject/,
      token,
    );
  });
});

describe('createAuthenticator, configuration', () => {
  it('returns the anonymous principal when mode is off, whatever the header', () => {
    const auth = createAuthenticator({ mode: 'off' });
    expect(auth.mode).toBe('off');
    expect(auth.authenticate(undefined)).toEqual({ subject: 'anonymous', claims: {} });
    expect(auth.authenticate('Basic garbage').subject).toBe('anonymous');
  });

  it('refuses jwt mode without a secret or key, or with a bad key, as INVALID_CONFIG', () => {
    const attempts = [
      () => createAuthenticator({ mode: 'jwt' }),
      () => createAuthenticator({ mode: 'jwt', jwtSecret: '' }),
      () => createAuthenticator({ mode: 'jwt', jwtPublicKey: 'not a pem' }),
      () => createAuthenticator({ mode: 'jwt', jwtSecret: SECRET, clockToleranceS: -1 }),
    ];
    for (const attempt of attempts) {
      expect(attempt).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIG', message: expect.stringMatching(/\w/) }),
      );
    }
    expect(attempts[0]).toThrow(/JWT_SECRET .* JWT_PUBLIC_KEY/);
    expect(attempts[2]).toThrow(/JWT_PUBLIC_KEY/);
  });
});
