import type { ConfigOf, Env } from '@candlestream/config';
import { loadConfig, vars } from '@candlestream/config';

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
