import type {
  BackfillJob,
  BackfillReport,
  BackfillStatus,
  UnavailableRange,
} from '@candlestream/core';
import { errorMessage } from '@candlestream/core';
import type { HealthTag } from '@candlestream/runtime/machine';
import { notProvided, restartDelayMs } from '@candlestream/runtime/machine';
import { assign, fromPromise, sendParent, setup } from 'xstate';

/** How a job ended: what `finish` records and reports. */
export interface JobOutcome {
  status: Extract<BackfillStatus, 'done' | 'failed'>;
  error?: string;
  unavailable?: UnavailableRange[];
}

export type JobEvent =
  /** A report on this job from the producer or the dynamic consumer (the coordinator forwards it). */
  | { type: 'REPORT'; report: BackfillReport }
  /** A job this one waits on has ended. */
  | { type: 'DEPENDENCY_ENDED'; id: string; status: BackfillStatus };

/** What the job tells the coordinator when it is over. */
export interface JobEndedEvent {
  type: 'JOB_ENDED';
  id: string;
  status: JobOutcome['status'];
}

export interface JobInput {
  job: BackfillJob;
  /** Jobs of `job.waitsOn` that had already ended when this one was spawned, and how. */
  endedDependencies: Record<string, BackfillStatus>;
}

export interface JobContext {
  job: BackfillJob;
  /** Jobs this one still waits on. */
  pending: string[];
  /** Jobs it waited on that failed. */
  failedDependencies: string[];
  outcome: JobOutcome | undefined;
  /** Failed tries of the current step; sets the backoff. */
  attempt: number;
}

const isWorkerReport = (event: JobEvent, status: BackfillStatus): boolean =>
  event.type === 'REPORT' && event.report.status === status;

/**
 * One backfill job's life, spawned by the coordinator per job (docs/BACKFILLS.md). A job with
 * ranges to fetch creates its topic and sends its command (`start`), then follows the producer's
 * and the dynamic consumer's reports: fetching, storing, then done or failed; a job that goes
 * without a report for `stallTimeout` fails. A job whose missing minutes other jobs were already
 * fetching only waits for them. `finish` records and announces the end; the coordinator is told.
 */
export const jobMachine = setup({
  types: {
    context: {} as JobContext,
    events: {} as JobEvent,
    input: {} as JobInput,
    tags: {} as HealthTag,
  },
  actors: {
    /** Creates the job topic, records `fetching`, sends the command. */
    start: fromPromise<void, BackfillJob>(() => notProvided('start')),
    /** Records and announces `storing`. */
    persist: fromPromise<void, { job: BackfillJob; status: BackfillStatus }>(() =>
      notProvided('persist'),
    ),
    /** Records and announces the end. */
    finish: fromPromise<void, { job: BackfillJob; outcome: JobOutcome }>(() =>
      notProvided('finish'),
    ),
  },
  delays: {
    stallTimeout: 300_000,
    retryDelay: ({ context }) => restartDelayMs(context.attempt, 30_000),
  },
  guards: {
    onlyWaits: ({ context }) => context.job.ranges.length === 0,
    /** A failed start is tried again a few times, unless the error says it cannot succeed. */
    mayRetryStart: ({ context, event }) =>
      context.attempt < 5 &&
      (event as unknown as { error?: { retriable?: boolean } }).error?.retriable !== false,
    wasStoring: ({ context }) => context.job.status === 'storing',
    wasFetching: ({ context }) => context.job.status === 'fetching',
    reportsFailed: ({ event }) => isWorkerReport(event, 'failed'),
    reportsDone: ({ event }) =>
      isWorkerReport(event, 'done') &&
      event.type === 'REPORT' &&
      event.report.reporter === 'dynamic-consumer',
    reportsStoring: ({ event }) => isWorkerReport(event, 'storing'),
    nothingPending: ({ context }) => context.pending.length === 0,
    lastPending: ({ context, event }) =>
      event.type === 'DEPENDENCY_ENDED' &&
      context.pending.length === 1 &&
      context.pending[0] === event.id,
  },
  actions: {
    recordAttempt: assign({ attempt: ({ context }) => context.attempt + 1 }),
    resetAttempts: assign({ attempt: 0 }),
    outcomeFromReport: assign({
      outcome: ({ event }): JobOutcome | undefined => {
        if (event.type !== 'REPORT') return undefined;
        const { status, error, unavailable } = event.report;
        return status === 'failed'
          ? { status: 'failed', error: error ?? 'the job failed' }
          : { status: 'done', unavailable: unavailable ?? [] };
      },
    }),
    outcomeStalled: assign({
      outcome: (): JobOutcome => ({
        status: 'failed',
        error: 'no report from the producer or the dynamic consumer in time; is each running?',
      }),
    }),
    outcomeStartFailed: assign({
      outcome: ({ event }): JobOutcome => ({
        status: 'failed',
        error: `could not start: ${errorMessage((event as unknown as { error: unknown }).error)}`,
      }),
    }),
    dependencyEnded: assign({
      pending: ({ context, event }) =>
        event.type === 'DEPENDENCY_ENDED'
          ? context.pending.filter((id) => id !== event.id)
          : context.pending,
      failedDependencies: ({ context, event }) =>
        event.type === 'DEPENDENCY_ENDED' && event.status === 'failed'
          ? [...context.failedDependencies, event.id]
          : context.failedDependencies,
    }),
    outcomeFromDependencies: assign({
      outcome: ({ context }): JobOutcome =>
        context.failedDependencies.length > 0
          ? {
              status: 'failed',
              error: `the job${context.failedDependencies.length > 1 ? 's' : ''} fetching this range failed: ${context.failedDependencies.join(', ')}`,
            }
          : { status: 'done', unavailable: [] },
    }),
    tellCoordinator: sendParent(({ context }): JobEndedEvent => ({
      type: 'JOB_ENDED',
      id: context.job.id,
      status: context.outcome?.status ?? 'failed',
    })),
  },
}).createMachine({
  id: 'backfillJob',
  context: ({ input }) => {
    const failed = Object.entries(input.endedDependencies)
      .filter(([, status]) => status === 'failed')
      .map(([id]) => id);
    return {
      job: input.job,
      pending: input.job.waitsOn.filter((id) => !(id in input.endedDependencies)),
      failedDependencies: failed,
      outcome: undefined,
      attempt: 0,
    };
  },
  initial: 'routing',
  states: {
    // Where a job starts: a restored job resumes in the state it was recorded in.
    routing: {
      tags: ['healthy'],
      always: [
        { guard: 'onlyWaits', target: 'waiting' },
        { guard: 'wasStoring', target: 'storing' },
        { guard: 'wasFetching', target: 'fetching' },
        { target: 'starting' },
      ],
    },
    starting: {
      tags: ['healthy'],
      invoke: {
        src: 'start',
        input: ({ context }) => context.job,
        onDone: { target: 'fetching', actions: 'resetAttempts' },
        onError: [
          {
            guard: 'mayRetryStart',
            target: 'retryingStart',
            actions: 'recordAttempt',
          },
          { target: 'finishing', actions: 'outcomeStartFailed' },
        ],
      },
    },
    retryingStart: {
      tags: ['degraded'],
      after: { retryDelay: 'starting' },
    },
    fetching: {
      tags: ['healthy'],
      initial: 'awaitingReport',
      states: {
        awaitingReport: {
          after: { stallTimeout: { target: '#backfillJob.finishing', actions: 'outcomeStalled' } },
        },
      },
      on: {
        REPORT: [
          { guard: 'reportsFailed', target: 'finishing', actions: 'outcomeFromReport' },
          { guard: 'reportsDone', target: 'finishing', actions: 'outcomeFromReport' },
          { guard: 'reportsStoring', target: 'storing' },
          // Any other report (fetching progress) shows the job is alive: the stall timer restarts.
          { target: '.awaitingReport', reenter: true },
        ],
      },
    },
    storing: {
      tags: ['healthy'],
      invoke: {
        src: 'persist',
        input: ({ context }) => ({ job: context.job, status: 'storing' as const }),
      },
      initial: 'awaitingReport',
      states: {
        awaitingReport: {
          after: { stallTimeout: { target: '#backfillJob.finishing', actions: 'outcomeStalled' } },
        },
      },
      on: {
        REPORT: [
          { guard: 'reportsFailed', target: 'finishing', actions: 'outcomeFromReport' },
          { guard: 'reportsDone', target: 'finishing', actions: 'outcomeFromReport' },
          { target: '.awaitingReport', reenter: true },
        ],
      },
    },
    waiting: {
      tags: ['healthy'],
      always: { guard: 'nothingPending', target: 'finishing', actions: 'outcomeFromDependencies' },
      on: {
        DEPENDENCY_ENDED: [
          {
            guard: 'lastPending',
            target: 'finishing',
            actions: ['dependencyEnded', 'outcomeFromDependencies'],
          },
          { actions: 'dependencyEnded' },
        ],
      },
    },
    finishing: {
      tags: ['healthy'],
      invoke: {
        src: 'finish',
        input: ({ context }) => ({
          job: context.job,
          outcome: context.outcome ?? { status: 'failed', error: 'ended without an outcome' },
        }),
        onDone: 'ended',
        onError: { target: 'retryingFinish', actions: 'recordAttempt' },
      },
    },
    retryingFinish: {
      tags: ['degraded'],
      after: { retryDelay: 'finishing' },
    },
    ended: { type: 'final', tags: ['healthy'], entry: 'tellCoordinator' },
  },
});
