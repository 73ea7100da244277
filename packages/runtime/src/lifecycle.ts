import { configProblems } from '@candlestream/config';
import type { Logger } from '@candlestream/logger';

export interface RunningService {
  /** Stops in order (actor, consumers, pools); idempotent. */
  stop(): Promise<void>;
  /** Resolves when the service ended on its own (a finite source ran out). */
  done?: Promise<void>;
}

/** How long a stop may take before the process exits anyway. */
export const STOP_TIMEOUT_MS = 15_000;

/**
 * The only place a service process exits (STYLE: `main().catch(fatal)`). Bad config prints one
 * line per problem and exits 1; SIGINT/SIGTERM stop the service once, a second signal forces it.
 */
export function runService(
  name: string,
  start: () => Promise<{ service: RunningService; logger: Logger }>,
): void {
  const fatal = (err: unknown): never => {
    const problems = configProblems(err);
    if (problems) for (const line of problems) process.stderr.write(`${name}: ${line}\n`);
    else process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  };
  start().then(({ service, logger }) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        logger.warn('second signal: exiting without a clean stop', { signal });
        process.exit(130);
      }
      stopping = true;
      logger.info('stopping', { signal });
      const timer = setTimeout(() => {
        logger.error('stop timed out; exiting', { timeoutMs: STOP_TIMEOUT_MS });
        process.exit(1);
      }, STOP_TIMEOUT_MS);
      timer.unref();
      service.stop().then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (err: unknown) => {
          logger.error('stop failed', { err });
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    service.done?.then(
      () => {
        if (!stopping) stop('done');
      },
      (err: unknown) => {
        logger.error('service failed', { err });
        process.exit(1);
      },
    );
  }, fatal);
}
