import type { Clock } from '@candlestream/core';
import { AppError } from '@candlestream/core';
import { isDataError } from '@candlestream/db';
import { isRefusedByBroker } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import { DependencyRetrier } from '@candlestream/runtime';

/** The checks a job's work can fail on; /health names them in `problems`. */
export type Check = 'database' | 'kafka';

/** Runs a job's dependency calls the way the fixed consumer's pipeline does (docs/PIPELINE.md). */
export type Retrier = DependencyRetrier<Check>;

/** Whether trying the same call again may help: not for refused data or a refused argument. */
export function isWorthRetrying(err: unknown): boolean {
  if (isDataError(err) || isRefusedByBroker(err)) return false;
  return !AppError.is(err, 'INVALID_ARGUMENT') && !AppError.is(err, 'CANCELLED');
}

/** A job never fails because the database or the broker was away for a while: it waits, degraded. */
export function createRetrier(options: {
  logger: Logger;
  onHealth: (check: Check, problem: string | undefined) => void;
  onRetry?: (check: Check) => void;
  waitClock: Clock;
  stalledAfterMs?: number;
}): Retrier {
  return new DependencyRetrier<Check>({ ...options, isRetriable: isWorthRetrying, isDataError });
}
