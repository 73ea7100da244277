/** `pnpm migrate`: applies migrations/ to DATABASE_URL (TimescaleDB when it can, else plain PostgreSQL). */
import { configProblems } from '@candlestream/config';
import { createLogger } from '@candlestream/logger';
import { loadMigrateConfig } from './config.js';
import { migrate } from './migrate.js';

async function main(): Promise<void> {
  const config = loadMigrateConfig();
  const logger = createLogger({ service: 'migrate', level: config.logLevel });
  const result = await migrate({ url: config.databaseUrl }, { logger });
  logger.info('database ready', { backend: result.backend, applied: result.applied.length });
}

main().catch((err: unknown) => {
  const problems = configProblems(err);
  if (problems) for (const line of problems) process.stderr.write(`migrate: ${line}\n`);
  else process.stderr.write(`migrate: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
