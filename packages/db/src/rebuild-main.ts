/**
 * `pnpm rebuild --symbol S --from ISO --to ISO`: brings bars_1m and every ohlcv_* relation in
 * line with the trades in `ticks` over that range, for trades written there by other writers (a
 * bulk COPY of an archive, psql). Idempotent: running it twice changes nothing the second time.
 */
import { AppError } from '@candlestream/core';
import { configProblems } from '@candlestream/config';
import { createLogger } from '@candlestream/logger';
import { loadMigrateConfig } from './config.js';
import { parseRebuildArgs, rebuildProgressLine } from './rebuild.js';
import { Repository } from './repository.js';

/** A terminal gets a progress line redrawn in place; a log file gets one line this often. */
const PROGRESS_LOG_EVERY_MS = 5_000;

async function main(): Promise<void> {
  const args = parseRebuildArgs(process.argv.slice(2).filter((a) => a !== '--'));
  const config = loadMigrateConfig();
  const logger = createLogger({ service: 'rebuild', level: config.logLevel });
  const repository = new Repository({ url: config.databaseUrl, logger });
  const started = Date.now();
  const tty = process.stderr.isTTY;
  let lastLog = 0;
  try {
    await repository.backend(); // a database without migrations stops here, with the reason
    const result = await repository.rebuildMinutes(args.symbol, args.from, args.to, (p) => {
      const line = rebuildProgressLine(args, p, Date.now() - started);
      if (tty) process.stderr.write(`\r${line}`);
      else if (Date.now() - lastLog >= PROGRESS_LOG_EVERY_MS) {
        lastLog = Date.now();
        logger.info('rebuild progress', { line, ...p });
      }
    });
    if (tty) process.stderr.write('\n');
    logger.info('rebuild done', {
      symbol: args.symbol,
      from: new Date(args.from).toISOString(),
      to: new Date(args.to).toISOString(),
      ...result,
      durationMs: Date.now() - started,
    });
  } finally {
    await repository.close();
  }
}

main().catch((err: unknown) => {
  const problems = configProblems(err);
  if (problems) for (const line of problems) process.stderr.write(`rebuild: ${line}\n`);
  else process.stderr.write(`rebuild: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(AppError.is(err, 'INVALID_ARGUMENT') ? 2 : 1);
});
