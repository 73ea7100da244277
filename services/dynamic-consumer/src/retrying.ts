import type { Clock } from '@candlestream/core';
import { AppError, errorMessage, retry } from '@candlestream/core';
import { isRefusedByBroker } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';

/** The checks a job's work can fail on; /health names them in `problems`. */
export type Check = 'database' | 'kafka';

/** Backoff between tries of a failing dependency call (the fixed consumer's pipeline's). */
export const RETRY_BACKOFF = { initialDelayMs: 200, maxDelayMs: 10_000, jitter: 0.3 };
/**
 * A call with no answer for this long is reported as failing while it still waits: a database
 * behind a broken network answers nothing until its query timeout (packages/db
 * DEFAULT_DB_TIMEOUTS), longer than /health should say ok.
 */
export const STALLED_AFTER_MS = 5_000;
/** Heartbeat period while a call or a held batch waits (kafkajs' default heartbeat interval). */
export const HEARTBEAT_MS = 3_000;

/** PostgreSQL SQLSTATE classes that mean "this data is refused", not "try again". */
const DATA_ERROR_CLASSES = ['22', '23'];

function sqlState(err: unknown): string | undefined {
  const e = err as { parent?: { code?: unknown }; original?: { code?: unknown }; code?: unknown };
  const code = e.parent?.code ?? e.original?.code ?? e.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Whether the database refused the data itself (retrying the same rows cannot help). */
export function isDataError(err: unknown): boolean {
  const state = sqlState(err);
  return state !== undefined && DATA_ERROR_CLASSES.includes(state.slice(0, 2));
}

/** Whether trying the same call again may help: not for refused data or a refused argument. */
export function isWorthRetrying(err: unknown): boolean {
  if (isDataError(err) || isRefusedByBroker(err)) return false;
  return !AppError.is(err, 'INVALID_ARGUMENT') && !AppError.is(err, 'CANCELLED');
}

export interface RetrierOptions {
  logger: Logger;
  /** Reports a failing dependency (retrying) or its recovery, for the machine and /health. */
  onHealth: (check: Check, problem: string | undefined) => void;
  /** Counts each failed try that is retried. */
  onRetry?: (check: Check) => void;
  /** Whose timers measure real waiting: stall reports, heartbeats while waiting, backoffs. */
  waitClock: Clock;
  stalledAfterMs?: number;
}

/**
 * Runs dependency calls until they succeed, backing off between tries and keeping the group
 * membership alive, the way the fixed consumer's pipeline does (docs/PIPELINE.md): a job never
 * fails because the database or the broker was away for a while; it waits, degraded.
 */
export class Retrier {
  readonly #o: RetrierOptions;

  constructor(options: RetrierOptions) {
    this.#o = options;
  }

  async run<T>(
    check: Check,
    signal: AbortSignal,
    heartbeat: (() => Promise<void>) | undefined,
    work: () => Promise<T>,
  ): Promise<T> {
    const { waitClock, logger, onHealth } = this.#o;
    const stalledAfterMs = this.#o.stalledAfterMs ?? STALLED_AFTER_MS;
    let failed = false;
    const watched = async (): Promise<T> => {
      const timer = waitClock.setTimeout(() => {
        failed = true;
        const problem = `no answer for ${stalledAfterMs} ms`;
        onHealth(check, problem);
        logger.warn('stalled', { check, err: problem });
      }, stalledAfterMs);
      const beat = heartbeat
        ? waitClock.setInterval(() => void heartbeat().catch(() => undefined), HEARTBEAT_MS)
        : undefined;
      try {
        return await work();
      } finally {
        waitClock.clearTimeout(timer);
        waitClock.clearInterval(beat);
      }
    };
    try {
      const result = await retry(watched, {
        backoff: RETRY_BACKOFF,
        clock: waitClock,
        signal,
        isRetriable: isWorthRetrying,
        ...(heartbeat ? { afterWait: heartbeat } : {}),
        onRetry: ({ error, tried, delayMs }) => {
          failed = true;
          const message = errorMessage(error);
          this.#o.onRetry?.(check);
          onHealth(check, message);
          logger.warn('retrying', { check, attempt: tried, delayMs, err: message });
        },
      });
      if (failed) onHealth(check, undefined);
      return result;
    } catch (err) {
      // A try that failed because the consumer is stopping: say so, not the try's own error.
      if (signal.aborted && !isDataError(err) && err !== signal.reason) {
        throw new AppError('CANCELLED', 'consumer stopping', { cause: err });
      }
      throw err;
    }
  }
}
