import { parseArgs } from 'node:util';
import { createLogger } from '@candlestream/logger';
import { startBroker } from './broker.js';

/** `pnpm broker [--port 9092] [--host 127.0.0.1] [--data-dir DIR]`: the broker alone, until a signal. */
async function main(): Promise<void> {
  // `pnpm broker --port 9092` reaches us as `-- --port 9092`; a leading `--` is not an argument.
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv[0] === '--' ? argv.slice(1) : argv,
    options: {
      port: { type: 'string', default: '9092' },
      host: { type: 'string', default: '127.0.0.1' },
      'data-dir': { type: 'string' },
      'auto-create-topics': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port must be an integer 0..65535, got ${values.port}`);
  }
  const logger = createLogger({ service: 'broker' });
  const broker = await startBroker({
    port,
    host: values.host,
    logger,
    allowAutoTopicCreation: values['auto-create-topics'],
    ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
  });
  const stop = (signal: string): void => {
    logger.info('stopping', { signal });
    broker.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('stop failed', { err });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`broker: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
