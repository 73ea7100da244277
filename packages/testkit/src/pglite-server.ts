/**
 * Runs PGlite with TimescaleDB in a process of its own and prints `{"url": …}` once it listens.
 * A WASM fault in PGlite then ends this process, not the test runner that started it.
 */
import { startPgliteTimescale } from './pglite.js';

const started = await startPgliteTimescale();
process.stdout.write(`${JSON.stringify({ url: started.url })}\n`);
const stop = (): void => {
  started.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
