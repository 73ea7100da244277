import type { ConfigOf, Env } from '@candlestream/config';
import { loadConfig, vars } from '@candlestream/config';
import Joi from 'joi';

/** What `pnpm replay` reads from the environment beside its arguments. */
const replaySpec = {
  kafkaBrokers: vars.kafkaBrokers(),
  logLevel: vars.logLevel(),
};
const storedSpec = { ...replaySpec, databaseUrl: vars.databaseUrl() };

export type ReplayEnvConfig = ConfigOf<typeof replaySpec> & { databaseUrl?: string };

/** The database is needed only to replay stored history (not a file). */
export function loadReplayConfig(env: Env, needsDatabase: boolean): ReplayEnvConfig {
  return needsDatabase ? loadConfig(storedSpec, env) : loadConfig(replaySpec, env);
}

/** The simulator service, hosting the chart's replay sessions. */
const serviceSpec = {
  ...storedSpec,
  healthPort: vars.healthPort(3005),
  host: vars.host(),
  groupId: vars.custom<string>(
    'SIMULATOR_GROUP',
    Joi.string()
      .pattern(/^[A-Za-z0-9._-]{1,100}$/)
      .messages({ 'string.pattern.base': '{{#label}} must be 1-100 of A-Z a-z 0-9 . _ -' }),
    { fallback: 'simulator' },
  ),
  idleTimeoutMs: vars.replayIdleTimeoutMs(),
  /** Sessions hosted at once; a create beyond it is answered as failed. */
  maxSessions: vars.custom<number>(
    'REPLAY_MAX_SESSIONS',
    Joi.number().integer().min(1).max(1_000).messages({
      'number.base': '{{#label}} must be a whole number of sessions between 1 and 1000',
      'number.min': '{{#label}} must be a whole number of sessions between 1 and 1000',
      'number.max': '{{#label}} must be a whole number of sessions between 1 and 1000',
    }),
    { fallback: 50 },
  ),
};

export type SimulatorConfig = ConfigOf<typeof serviceSpec>;

export function loadSimulatorConfig(env: Env = process.env): SimulatorConfig {
  return loadConfig(serviceSpec, env);
}
