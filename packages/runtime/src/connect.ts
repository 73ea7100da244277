import { AppError } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import { fromPromise } from 'xstate';
import type { PendingStops } from './feed.js';

/** What a service that consumes, publishes and writes to the database connects first. */
export interface ConnectDeps {
  stops: PendingStops;
  logger: Logger;
  publisher: { connect(): Promise<void> };
  /** Its `backend()` reads the migrations table: reachable and migrated, or it throws. */
  repository: { backend(): Promise<unknown> };
}

/**
 * The `connect` actor of such a service: the previous run's consumers gone (so a new member
 * never overlaps the old one), the broker reachable with its topics present (`ensureTopics`
 * answers those it created), the publisher connected, the database migrated. A database that
 * does not answer is UNAVAILABLE, which the machine retries.
 */
export function connectServiceActor(deps: ConnectDeps, ensureTopics: () => Promise<string[]>) {
  return fromPromise<void>(() => connectService(deps, ensureTopics));
}

/** What `connectServiceActor` does, for a connect actor that does more after it. */
export async function connectService(
  deps: ConnectDeps,
  ensureTopics: () => Promise<string[]>,
): Promise<void> {
  await deps.stops.settled();
  const created = await ensureTopics();
  if (created.length > 0) deps.logger.info('topics created', { topics: created });
  await deps.publisher.connect();
  try {
    await deps.repository.backend();
  } catch (err) {
    throw AppError.from(err, 'UNAVAILABLE');
  }
}
