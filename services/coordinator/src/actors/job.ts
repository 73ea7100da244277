import type { BackfillCommand, BackfillStatus } from '@candlestream/core';
import {
  AppError,
  BACKFILL_MESSAGE_VERSION,
  backfillTopicName,
  encodeBackfillMessage,
} from '@candlestream/core';
import type { BackfillJob } from '@candlestream/db';
import { backfillTopic, ensureTopics } from '@candlestream/kafka';
import { fromPromise } from 'xstate';
import type { JobOutcome } from '../job.machine.js';
import type { Deps } from './deps.js';
import { announce } from './reporting.js';

async function recorded(deps: Deps, id: string): Promise<BackfillJob> {
  const job = await deps.jobs.get(id);
  if (!job)
    throw new AppError('NOT_FOUND', `backfill job ${id} is not recorded`, { retriable: false });
  return job;
}

/**
 * Starts a job: its topic first (explicit partitions, never auto-created), then `fetching` is
 * recorded, then the command goes out; a retry repeats only what did not happen (the topic exists,
 * the command is sent again: the producer resumes after what the topic holds).
 */
export function startJobActor(deps: Deps) {
  return fromPromise<void, BackfillJob>(async ({ input }) => {
    const topic = input.topic ?? backfillTopicName(input.symbol, input.id);
    await ensureTopics(deps.kafka, [backfillTopic(topic)]);
    const now = deps.clock.now();
    const job = await deps.jobs.update(
      input.id,
      { status: 'fetching', topic, startedAt: now },
      now,
    );
    if (!job)
      throw new AppError('NOT_FOUND', `backfill job ${input.id} is not recorded`, {
        retriable: false,
      });
    const command: BackfillCommand = {
      v: BACKFILL_MESSAGE_VERSION,
      id: job.id,
      symbol: job.symbol,
      topic,
      ranges: job.ranges,
    };
    await deps.publisher.send(deps.topics.commands.name, [
      { key: job.id, value: encodeBackfillMessage(command) },
    ]);
    deps.logger.info('backfill started', {
      job: job.id,
      symbol: job.symbol,
      topic,
      minutes: job.progress.total,
    });
    await announce(deps, job, 'fetching');
  });
}

/** Records and announces a status the job reached by a report (storing). */
export function persistJobActor(deps: Deps) {
  return fromPromise<void, { job: BackfillJob; status: BackfillStatus }>(async ({ input }) => {
    const now = deps.clock.now();
    const job = await deps.jobs.update(input.job.id, { status: input.status }, now);
    await announce(deps, job ?? (await recorded(deps, input.job.id)), input.status);
  });
}

/**
 * Records the end (a no-op if the reports actor already did: an ended job keeps its status) and
 * announces it as recorded.
 */
export function finishJobActor(deps: Deps) {
  return fromPromise<void, { job: BackfillJob; outcome: JobOutcome }>(async ({ input }) => {
    const now = deps.clock.now();
    const { outcome } = input;
    await deps.jobs.update(
      input.job.id,
      {
        status: outcome.status,
        finishedAt: now,
        ...(outcome.error ? { error: outcome.error } : {}),
        ...(outcome.unavailable ? { unavailable: outcome.unavailable } : {}),
        ...(outcome.status === 'done'
          ? { progress: { done: input.job.progress.total, total: input.job.progress.total } }
          : {}),
      },
      now,
    );
    const job = await recorded(deps, input.job.id);
    deps.counters.ended.inc(1, { status: job.status });
    deps.logger.info('backfill ended', {
      job: job.id,
      symbol: job.symbol,
      status: job.status,
      minutes: job.progress.total,
      tookMs: job.startedAt === null ? 0 : now - job.startedAt,
      ...(job.error ? { error: job.error } : {}),
      ...(job.unavailable.length > 0 ? { unavailable: job.unavailable } : {}),
    });
    await announce(deps, job);
  });
}
