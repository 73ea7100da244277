import type { ConfigOf, Env } from '@candlestream/config';
import { authProblems, loadConfig, vars } from '@candlestream/config';
import { isIP } from 'node:net';
import Joi from 'joi';

/** proxy-addr's named ranges (express `trust proxy`), besides addresses and CIDR subnets. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * TRUST_PROXY: the proxies whose `X-Forwarded-For` names the client, comma-separated: addresses,
 * subnets (`10.0.0.0/8`) or `loopback`, `linklocal`, `uniquelocal`. Anything else is refused here
 * rather than by express at startup.
 */
export function parseTrustProxy(value: string): string[] {
  const entries = value
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  for (const entry of entries) {
    const [address = '', bits, ...rest] = entry.split('/');
    const family = isIP(address);
    const prefixOk =
      bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (PROXY_RANGES.has(entry)) continue;
    if (family === 0 || !prefixOk || rest.length > 0) {
      throw new Error(
        `has ${JSON.stringify(entry)}, which is not an address, a subnet, loopback, linklocal or uniquelocal`,
      );
    }
  }
  return entries;
}

function trustProxySchema(): Joi.Schema {
  return Joi.string().custom((value: string, helpers) => {
    try {
      return parseTrustProxy(value);
    } catch (err) {
      return helpers.message({ custom: `{{#label}} ${(err as Error).message}` });
    }
  });
}

const spec = {
  kafkaBrokers: vars.kafkaBrokers(),
  databaseUrl: vars.databaseUrl(),
  redisUrl: vars.redisUrl(),
  symbols: vars.symbols(),
  port: vars.port(),
  host: vars.host(),
  authMode: vars.authMode(),
  jwtSecret: vars.jwtSecret(),
  jwtPublicKey: vars.jwtPublicKey(),
  logLevel: vars.logLevel(),
  cachePrefix: vars.cachePrefix(),
  /** Requests per minute per client (token subject, else IP); bursts up to the same number. */
  rateLimitPerMinute: vars.custom<number>(
    'RATE_LIMIT_PER_MINUTE',
    Joi.number().integer().min(1).max(1_000_000),
    { fallback: 600 },
  ),
  /** Proxies trusted to name the client in X-Forwarded-For; unset: the header is never used. */
  trustProxy: vars.custom<string[] | undefined>('TRUST_PROXY', trustProxySchema()),
  /** The simulator's idle timeout for replay sessions: watched ones are touched within it. */
  replayIdleTimeoutMs: vars.replayIdleTimeoutMs(),
  /** Most bars one answer may hold; a longer range is a 400 that says so. */
  maxBars: vars.custom<number>('MAX_BARS', Joi.number().integer().min(100).max(1_000_000), {
    fallback: 20_000,
  }),
  /** Memory for rendered closed pages of /ohlcv answers, in MiB; 0 renders every answer. */
  preparedCacheMb: vars.custom<number>(
    'PREPARED_CACHE_MB',
    Joi.number().integer().min(0).max(65_536),
    { fallback: 64 },
  ),
};

export type DatastoreConfig = ConfigOf<typeof spec>;

export function loadDatastoreConfig(env: Env = process.env): DatastoreConfig {
  return loadConfig(spec, env, { refine: authProblems });
}
