/**
 * `pnpm replay …` (docs/REPLAY.md): the market simulator's command line. With no DATABASE_URL
 * or KAFKA_BROKERS it replays from, and into, the platform `pnpm start` runs.
 */
import { runReplayCli } from '@candlestream/simulator';
import { embeddedDatabaseUrl, PG_DEFAULT_PORT } from './postgres-settings.js';

const env = {
  ...process.env,
  DATABASE_URL:
    process.env['DATABASE_URL'] ||
    embeddedDatabaseUrl(Number(process.env['PG_PORT'] || PG_DEFAULT_PORT)),
};

runReplayCli(process.argv.slice(2), env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pnpm replay: ${String(err)}\n`);
    process.exit(1);
  },
);
