import type {
  BackfillJob,
  BackfillStatus,
  EpochMs,
  MarketSymbol,
  TimeRange,
  UnavailableRange,
} from '@candlestream/core';

export type { BackfillJob } from '@candlestream/core';
import { QueryTypes } from 'sequelize';
import type { Repository } from './repository.js';
import { epochMsSql as MS, fromEpochMsSql as FROM_MS } from './sql-time.js';

const COLUMNS = `id, symbol, ${MS('from_ts')} AS "from", ${MS('to_ts')} AS "to", status, ranges,
  waits_on AS "waitsOn", minutes_done AS "done", minutes_total AS "total", topic, error,
  unavailable, requested_by AS "requestedBy", ${MS('created_at')} AS "createdAt",
  ${MS('updated_at')} AS "updatedAt", ${MS('started_at')} AS "startedAt",
  ${MS('finished_at')} AS "finishedAt", ${MS('topic_deleted_at')} AS "topicDeletedAt"`;

type JobRow = Omit<BackfillJob, 'progress'> & { done: number; total: number };

function toJob(row: JobRow): BackfillJob {
  const { done, total, ...rest } = row;
  return { ...rest, progress: { done, total } };
}

/** A change to a job; only the fields given are written. */
export interface BackfillJobChange {
  status?: BackfillStatus;
  ranges?: TimeRange[];
  waitsOn?: string[];
  progress?: { done: number; total: number };
  topic?: string;
  error?: string | null;
  unavailable?: UnavailableRange[];
  startedAt?: EpochMs;
  finishedAt?: EpochMs;
  topicDeletedAt?: EpochMs;
}

/**
 * The backfill_jobs table: the coordinator writes it, the datastore reads it for GET /backfills.
 * Every write sets updated_at to `at` (the caller's clock), so tests on a simulated clock and
 * replays see their own times.
 */
export class BackfillJobs {
  readonly #repository: Repository;

  constructor(repository: Repository) {
    this.#repository = repository;
  }

  /** Records a new job as queued; a job with this id already recorded is left as it is. */
  async create(
    job: {
      id: string;
      symbol: MarketSymbol;
      from: EpochMs;
      to: EpochMs;
      requestedBy?: string | undefined;
    },
    at: EpochMs,
  ): Promise<{ created: boolean; job: BackfillJob }> {
    const inserted = await this.#repository.sequelize.query<{ id: string }>(
      `INSERT INTO backfill_jobs (id, symbol, from_ts, to_ts, status, requested_by, created_at, updated_at)
       VALUES ($1, $2, ${FROM_MS('$3::bigint')}, ${FROM_MS('$4::bigint')}, 'queued', $5,
               ${FROM_MS('$6::bigint')}, ${FROM_MS('$6::bigint')})
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      {
        bind: [job.id, job.symbol, job.from, job.to, job.requestedBy ?? null, at],
        type: QueryTypes.SELECT,
      },
    );
    const stored = await this.get(job.id);
    if (!stored) throw new Error(`backfill job ${job.id} vanished after insert`);
    return { created: inserted.length > 0, job: stored };
  }

  async get(id: string): Promise<BackfillJob | undefined> {
    const rows = await this.#repository.sequelize.query<JobRow>(
      `SELECT ${COLUMNS} FROM backfill_jobs WHERE id = $1`,
      { bind: [id], type: QueryTypes.SELECT },
    );
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  /** The newest jobs first, optionally of one symbol. */
  async recent(limit: number, symbol?: MarketSymbol): Promise<BackfillJob[]> {
    const rows = await this.#repository.sequelize.query<JobRow>(
      `SELECT ${COLUMNS} FROM backfill_jobs WHERE ($2::text IS NULL OR symbol = $2)
       ORDER BY created_at DESC, id DESC LIMIT $1`,
      { bind: [limit, symbol ?? null], type: QueryTypes.SELECT },
    );
    return rows.map(toJob);
  }

  /** Jobs not yet done or failed, oldest first (a restarted coordinator resumes them in order). */
  async active(symbol?: MarketSymbol): Promise<BackfillJob[]> {
    const rows = await this.#repository.sequelize.query<JobRow>(
      `SELECT ${COLUMNS} FROM backfill_jobs
       WHERE status NOT IN ('done', 'failed') AND ($1::text IS NULL OR symbol = $1)
       ORDER BY created_at, id`,
      { bind: [symbol ?? null], type: QueryTypes.SELECT },
    );
    return rows.map(toJob);
  }

  /** Ended jobs whose topic still exists and that ended before `before`. */
  async topicsToDelete(before: EpochMs): Promise<BackfillJob[]> {
    const rows = await this.#repository.sequelize.query<JobRow>(
      `SELECT ${COLUMNS} FROM backfill_jobs
       WHERE status IN ('done', 'failed') AND topic IS NOT NULL AND topic_deleted_at IS NULL
         AND finished_at < ${FROM_MS('$1::bigint')}
       ORDER BY finished_at`,
      { bind: [before], type: QueryTypes.SELECT },
    );
    return rows.map(toJob);
  }

  /**
   * Ranges of `symbol` that done jobs asked the source for, overlapping [from, to): what the
   * source had there is stored, so a minute without a row in them is one without trades.
   */
  async fetchedRanges(symbol: MarketSymbol, from: EpochMs, to: EpochMs): Promise<TimeRange[]> {
    const rows = await this.#repository.sequelize.query<{
      ranges: TimeRange[];
      unavailable: UnavailableRange[];
    }>(
      `SELECT ranges, unavailable FROM backfill_jobs
       WHERE symbol = $1 AND status = 'done'
         AND from_ts < ${FROM_MS('$3::bigint')} AND to_ts > ${FROM_MS('$2::bigint')}`,
      { bind: [symbol, from, to], type: QueryTypes.SELECT },
    );
    return rows.flatMap((r) => r.ranges);
  }

  /**
   * Applies `change` to job `id` (no-op on an unknown id) and returns the job as stored after it.
   * An ended job (done, failed) keeps its status: a late or repeated report cannot reopen it.
   */
  async update(
    id: string,
    change: BackfillJobChange,
    at: EpochMs,
  ): Promise<BackfillJob | undefined> {
    const sets: string[] = [`updated_at = ${FROM_MS('$2::bigint')}`];
    const bind: unknown[] = [id, at];
    const set = (column: string, value: unknown, cast = ''): void => {
      bind.push(value);
      sets.push(`${column} = $${bind.length}${cast}`);
    };
    const setTime = (column: string, value: EpochMs): void => {
      bind.push(value);
      sets.push(`${column} = ${FROM_MS(`$${bind.length}::bigint`)}`);
    };
    if (change.status !== undefined) set('status', change.status);
    if (change.ranges !== undefined) set('ranges', JSON.stringify(change.ranges), '::jsonb');
    if (change.waitsOn !== undefined) set('waits_on', change.waitsOn, '::text[]');
    if (change.progress !== undefined) {
      set('minutes_done', change.progress.done);
      set('minutes_total', change.progress.total);
    }
    if (change.topic !== undefined) set('topic', change.topic);
    if (change.error !== undefined) set('error', change.error);
    if (change.unavailable !== undefined) {
      set('unavailable', JSON.stringify(change.unavailable), '::jsonb');
    }
    if (change.startedAt !== undefined) setTime('started_at', change.startedAt);
    if (change.finishedAt !== undefined) setTime('finished_at', change.finishedAt);
    if (change.topicDeletedAt !== undefined) setTime('topic_deleted_at', change.topicDeletedAt);
    await this.#repository.sequelize.query(
      `UPDATE backfill_jobs SET ${sets.join(', ')} WHERE id = $1${
        change.status === undefined ? '' : ` AND status NOT IN ('done', 'failed')`
      }`,
      { bind },
    );
    return this.get(id);
  }
}
