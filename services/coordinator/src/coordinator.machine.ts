import type { BackfillJob, BackfillReport, BackfillStatus } from '@candlestream/core';
import {
  allRecovered,
  failureMessage,
  type HealthTag,
  notProvided,
  type Problems,
  restartDelayMs,
  withoutProblem,
  withProblem,
} from '@candlestream/runtime/machine';
import type { ActorRefFrom } from 'xstate';
import { assign, enqueueActions, fromCallback, fromPromise, setup } from 'xstate';
import type { JobEndedEvent } from './job.machine.js';
import { jobMachine } from './job.machine.js';

/** A job the planner recorded, or the restore found, with how its dependencies already ended. */
export interface PlannedJob {
  job: BackfillJob;
  endedDependencies: Record<string, BackfillStatus>;
}

export type CoordinatorEvent =
  | { type: 'STOP' }
  | { type: 'DEGRADED'; check: string; problem: string }
  | { type: 'RECOVERED'; check: string }
  | { type: 'CRASHED'; error: string }
  /** The planner recorded a job that has work to do (fetch, or wait on other jobs). */
  | { type: 'JOB_PLANNED'; planned: PlannedJob }
  /** A participant's report on a job (the reports actor has recorded it). */
  | { type: 'REPORT'; report: BackfillReport }
  | JobEndedEvent;

export interface CoordinatorContext {
  attempt: number;
  lastError: string | undefined;
  problems: Problems;
  /** Most jobs fetching at once. */
  maxJobs: number;
  /** Planned jobs waiting for a fetch slot, oldest first. */
  queue: PlannedJob[];
  /** Every running job's actor, by job id. */
  jobs: Record<string, ActorRefFrom<typeof jobMachine>>;
  /** Ids of running jobs that hold a fetch slot. */
  fetching: string[];
}

export interface CoordinatorInput {
  maxJobs: number;
}

/**
 * The coordinator: connect (broker, topics, database), restore the jobs a previous run left
 * unfinished, then run: the requests actor plans each request into a job (what is missing, which
 * running jobs it waits on), the reports actor records and forwards the participants' reports,
 * the sweeper deletes ended jobs' topics. Each job is a spawned `jobMachine`; at most `maxJobs`
 * fetch at once, the rest wait in the queue. A crashed consumer backs off and starts over from
 * connect; running jobs keep running meanwhile.
 */
export const coordinatorMachine = setup({
  types: {
    context: {} as CoordinatorContext,
    events: {} as CoordinatorEvent,
    input: {} as CoordinatorInput,
    tags: {} as HealthTag,
  },
  actors: {
    connect: fromPromise<void>(() => notProvided('connect')),
    /** The jobs not yet ended, as recorded. */
    restore: fromPromise<PlannedJob[]>(() => notProvided('restore')),
    requests: fromCallback<CoordinatorEvent>(() => notProvided('requests')),
    reports: fromCallback<CoordinatorEvent>(() => notProvided('reports')),
    sweeper: fromCallback<CoordinatorEvent>(() => notProvided('sweeper')),
    shutdown: fromPromise<void>(() => notProvided('shutdown')),
    job: jobMachine,
  },
  delays: {
    restartDelay: ({ context }) => restartDelayMs(context.attempt, 30_000),
  },
  actions: {
    recordFailure: assign({
      attempt: ({ context }) => context.attempt + 1,
      lastError: ({ event }) => failureMessage(event),
    }),
    resetFailures: assign({ attempt: 0, problems: {} }),
    markProblem: assign({ problems: ({ context, event }) => withProblem(context.problems, event) }),
    clearProblem: assign({
      problems: ({ context, event }) => withoutProblem(context.problems, event),
    }),
    /** Queues jobs the coordinator does not already run or hold (a repeated delivery). */
    enqueue: assign({
      queue: ({ context, event }) => {
        const planned: PlannedJob[] =
          event.type === 'JOB_PLANNED'
            ? [event.planned]
            : ((event as unknown as { output?: PlannedJob[] }).output ?? []);
        const known = new Set([
          ...Object.keys(context.jobs),
          ...context.queue.map((p) => p.job.id),
        ]);
        return [...context.queue, ...planned.filter((p) => !known.has(p.job.id))];
      },
    }),
    /**
     * Spawns queued jobs: the ones that only wait on others at once, the ones that fetch while a
     * slot is free (restored fetching or storing jobs first: they hold one already).
     */
    admit: enqueueActions(({ context, enqueue }) => {
      const fetching = [...context.fetching];
      const queue: PlannedJob[] = [];
      const ordered = [
        ...context.queue.filter((p) => p.job.status !== 'queued'),
        ...context.queue.filter((p) => p.job.status === 'queued'),
      ];
      for (const planned of ordered) {
        const fetches = planned.job.ranges.length > 0;
        if (fetches && fetching.length >= context.maxJobs && planned.job.status === 'queued') {
          queue.push(planned);
          continue;
        }
        if (fetches) fetching.push(planned.job.id);
        enqueue.assign({
          jobs: ({ context: c, spawn }) => ({
            ...c.jobs,
            [planned.job.id]: spawn('job', { id: planned.job.id, input: planned }),
          }),
        });
      }
      enqueue.assign({ queue, fetching });
    }),
    forwardReport: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'REPORT') return;
      const job = context.jobs[event.report.id];
      if (job) enqueue.sendTo(job, { type: 'REPORT', report: event.report });
    }),
    /** A job ended: its slot frees, the jobs waiting on it hear of it. */
    jobEnded: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'JOB_ENDED') return;
      const { [event.id]: ended, ...rest } = context.jobs;
      if (ended) enqueue.stopChild(ended);
      for (const ref of Object.values(rest)) {
        if (ref.getSnapshot().context.pending.includes(event.id)) {
          enqueue.sendTo(ref, { type: 'DEPENDENCY_ENDED', id: event.id, status: event.status });
        }
      }
      enqueue.assign({
        jobs: rest,
        fetching: context.fetching.filter((id) => id !== event.id),
      });
    }),
  },
  guards: {
    allRecovered: ({ context, event }) => allRecovered(context.problems, event),
  },
}).createMachine({
  id: 'coordinator',
  initial: 'connecting',
  context: ({ input }) => ({
    attempt: 0,
    lastError: undefined,
    problems: {},
    maxJobs: input.maxJobs,
    queue: [],
    jobs: {},
    fetching: [],
  }),
  on: {
    STOP: '.stopping',
    // Jobs run whatever the coordinator's own consumers are doing.
    JOB_ENDED: { actions: ['jobEnded', 'admit'] },
  },
  states: {
    connecting: {
      tags: ['degraded'],
      invoke: {
        src: 'connect',
        onDone: 'restoring',
        onError: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    restoring: {
      tags: ['degraded'],
      invoke: {
        src: 'restore',
        onDone: { target: 'running', actions: ['enqueue', 'admit'] },
        onError: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    running: {
      entry: 'resetFailures',
      invoke: [{ src: 'requests' }, { src: 'reports' }, { src: 'sweeper' }],
      initial: 'healthy',
      states: {
        healthy: {
          tags: ['healthy'],
          on: { DEGRADED: { target: 'degraded', actions: 'markProblem' } },
        },
        degraded: {
          tags: ['degraded'],
          on: {
            DEGRADED: { actions: 'markProblem' },
            RECOVERED: [
              { guard: 'allRecovered', target: 'healthy', actions: 'clearProblem' },
              { actions: 'clearProblem' },
            ],
          },
        },
      },
      on: {
        JOB_PLANNED: { actions: ['enqueue', 'admit'] },
        REPORT: { actions: 'forwardReport' },
        CRASHED: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    backingOff: {
      tags: ['down'],
      after: { restartDelay: 'connecting' },
    },
    stopping: {
      tags: ['down'],
      on: { STOP: {}, JOB_ENDED: {} },
      invoke: { src: 'shutdown', onDone: 'stopped', onError: 'stopped' },
    },
    stopped: { type: 'final', tags: ['down'] },
  },
});
