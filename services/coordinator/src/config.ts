import type { ConfigOf, Env } from '@candlestream/config';
import { loadConfig, vars } from '@candlestream/config';
import Joi from 'joi';

const ms = (label: string, min: number, max: number) =>
  Joi.number()
    .integer()
    .min(min)
    .max(max)
    .messages({
      'number.base': `{{#label}} must be a whole number of milliseconds (${label})`,
      'number.min': `{{#label}} must be between ${min} and ${max} ms`,
      'number.max': `{{#label}} must be between ${min} and ${max} ms`,
    });

const spec = {
  kafkaBrokers: vars.kafkaBrokers(),
  databaseUrl: vars.databaseUrl(),
  logLevel: vars.logLevel(),
  healthPort: vars.healthPort(3003),
  host: vars.host(),
  groupId: vars.custom<string>(
    'COORDINATOR_GROUP',
    Joi.string()
      .pattern(/^[A-Za-z0-9._-]{1,100}$/)
      .messages({ 'string.pattern.base': '{{#label}} must be 1-100 of A-Z a-z 0-9 . _ -' }),
    { fallback: 'coordinator' },
  ),
  /** Jobs fetching at once; more wait queued (a source's rate limit is shared by all of them). */
  maxJobs: vars.custom<number>(
    'BACKFILL_MAX_JOBS',
    Joi.number().integer().min(1).max(64).messages({
      'number.base': '{{#label}} must be a whole number of jobs between 1 and 64',
      'number.min': '{{#label}} must be a whole number of jobs between 1 and 64',
      'number.max': '{{#label}} must be a whole number of jobs between 1 and 64',
    }),
    { fallback: 2 },
  ),
  /** How long an ended job's topic is kept (for inspection and late readers) before deletion. */
  topicTtlMs: vars.custom<number>(
    'BACKFILL_TOPIC_TTL_MS',
    ms('how long an ended job topic is kept', 0, 7 * 24 * 3_600_000),
    { fallback: 3_600_000 },
  ),
  /** A running job with no report from the producer or the dynamic consumer for this long fails. */
  stallMs: vars.custom<number>(
    'BACKFILL_STALL_MS',
    ms('how long a job may go without a report', 5_000, 24 * 3_600_000),
    { fallback: 300_000 },
  ),
};

export type CoordinatorConfig = ConfigOf<typeof spec>;

export function loadCoordinatorConfig(env: Env = process.env): CoordinatorConfig {
  return loadConfig(spec, env);
}
