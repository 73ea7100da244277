import type { ConfigOf, Env } from '@candlestream/config';
import { loadConfig, vars } from '@candlestream/config';

const spec = {
  databaseUrl: vars.databaseUrl(),
  logLevel: vars.logLevel(),
};

export type MigrateConfig = ConfigOf<typeof spec>;

/** `pnpm migrate` reads DATABASE_URL and LOG_LEVEL, nothing else. */
export function loadMigrateConfig(env: Env = process.env): MigrateConfig {
  return loadConfig(spec, env);
}
