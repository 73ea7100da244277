import type { ConfigOf, Env } from '@candlestream/config';
import { authProblems, loadConfig, vars } from '@candlestream/config';
import Joi from 'joi';

const spec = {
  kafkaBrokers: vars.kafkaBrokers(),
  databaseUrl: vars.databaseUrl(),
  redisUrl: vars.redisUrl(),
  symbols: vars.symbols(),
  port: vars.port(),
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
  /** Most bars one answer may hold; a longer range is a 400 that says so. */
  maxBars: vars.custom<number>('MAX_BARS', Joi.number().integer().min(100).max(1_000_000), {
    fallback: 20_000,
  }),
};

export type DatastoreConfig = ConfigOf<typeof spec>;

export function loadDatastoreConfig(env: Env = process.env): DatastoreConfig {
  return loadConfig(spec, env, { refine: authProblems });
}
