import type { ConfigOf, Env } from '@candlestream/config';
import { loadConfig, vars } from '@candlestream/config';
import Joi from 'joi';

const spec = {
  kafkaBrokers: vars.kafkaBrokers(),
  databaseUrl: vars.databaseUrl(),
  redisUrl: vars.redisUrl(),
  logLevel: vars.logLevel(),
  healthPort: vars.healthPort(3002),
  host: vars.host(),
  groupId: vars.custom<string>(
    'CONSUMER_GROUP',
    Joi.string()
      .pattern(/^[A-Za-z0-9._-]{1,100}$/)
      .messages({
        'string.pattern.base': '{{#label}} must be 1-100 of A-Z a-z 0-9 . _ -',
      }),
    { fallback: 'fixed-consumer' },
  ),
  /** How long after its end a minute still takes trades before it closes (event time). */
  latenessMs: vars.custom<number>(
    'LIVE_LATENESS_MS',
    Joi.number().integer().min(0).max(600_000).messages({
      'number.base': '{{#label}} must be a whole number of milliseconds',
      'number.min': '{{#label}} must be between 0 and 600000 ms',
      'number.max': '{{#label}} must be between 0 and 600000 ms',
    }),
    { fallback: 2_000 },
  ),
  cachePrefix: vars.cachePrefix(),
};

export type FixedConsumerConfig = ConfigOf<typeof spec>;

export function loadFixedConsumerConfig(env: Env = process.env): FixedConsumerConfig {
  return loadConfig(spec, env);
}
