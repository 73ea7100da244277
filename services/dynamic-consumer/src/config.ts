import type { ConfigOf, Env } from '@candlestream/config';
import { loadConfig, vars } from '@candlestream/config';
import Joi from 'joi';

const spec = {
  kafkaBrokers: vars.kafkaBrokers(),
  databaseUrl: vars.databaseUrl(),
  logLevel: vars.logLevel(),
  // 3000 datastore, 3001 producer, 3002 fixed consumer, 3003 coordinator; `pnpm start` sets it
  // from DYNAMIC_CONSUMER_HEALTH_PORT.
  healthPort: vars.healthPort(3004),
  host: vars.host(),
  /**
   * The group on backfill-commands; each job's consumer joins `<group>.<job id>`. Not
   * CONSUMER_GROUP: `pnpm start` gives every service one environment, and the fixed consumer's
   * group on tick-data must never be this one.
   */
  groupId: vars.custom<string>(
    'DYNAMIC_CONSUMER_GROUP',
    Joi.string()
      // Room for `.<job id>` (up to 64 characters) within a 249-character group id.
      .pattern(/^[A-Za-z0-9._-]{1,100}$/)
      .messages({
        'string.pattern.base': '{{#label}} must be 1-100 of A-Z a-z 0-9 . _ -',
      }),
    { fallback: 'dynamic-consumer' },
  ),
};

export type DynamicConsumerConfig = ConfigOf<typeof spec>;

export function loadDynamicConsumerConfig(env: Env = process.env): DynamicConsumerConfig {
  return loadConfig(spec, env);
}
