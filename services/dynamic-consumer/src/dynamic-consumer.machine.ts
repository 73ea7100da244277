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
import { assign, fromCallback, fromPromise, setup } from 'xstate';

/** Events the consume actor sends up, and STOP from main. */
export type DynamicConsumerEvent =
  | { type: 'STOP' }
  | { type: 'DEGRADED'; check: string; problem: string }
  | { type: 'RECOVERED'; check: string }
  | { type: 'CRASHED'; error: string };

export interface DynamicConsumerContext {
  /** Failed starts in a row; sets the backoff. */
  attempt: number;
  lastError: string | undefined;
  /** Dependencies currently failing (retried inside a batch), by check name. */
  problems: Problems;
}

/** The longest wait between two starts, ms. */
export const MAX_RESTART_DELAY_MS = 30_000;

/**
 * The dynamic consumer's control flow. Connect (broker, topics, database), then consume
 * backfill-commands, running each command's job consumer, until stopped. Database and broker
 * trouble inside a job's batch is retried there (degraded); a crashed consumer (commands or a
 * job's) backs off exponentially and starts over from connect: the uncommitted commands come
 * again and each job's group resumes after its last commit.
 */
export const dynamicConsumerMachine = setup({
  types: {
    context: {} as DynamicConsumerContext,
    events: {} as DynamicConsumerEvent,
    /** /health reads these, never the state's name (STYLE). */
    tags: {} as HealthTag,
  },
  actors: {
    connect: fromPromise<void>(() => notProvided('connect')),
    consume: fromCallback<DynamicConsumerEvent>(() => notProvided('consume')),
    shutdown: fromPromise<void>(() => notProvided('shutdown')),
  },
  delays: {
    restartDelay: ({ context }) => restartDelayMs(context.attempt, MAX_RESTART_DELAY_MS),
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
  },
  guards: {
    allRecovered: ({ context, event }) => allRecovered(context.problems, event),
  },
}).createMachine({
  id: 'dynamicConsumer',
  initial: 'connecting',
  context: { attempt: 0, lastError: undefined, problems: {} },
  on: { STOP: '.stopping' },
  states: {
    connecting: {
      tags: ['degraded'],
      invoke: {
        src: 'connect',
        onDone: 'consuming',
        onError: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    consuming: {
      entry: 'resetFailures',
      invoke: { src: 'consume' },
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
      on: { CRASHED: { target: 'backingOff', actions: 'recordFailure' } },
    },
    backingOff: {
      tags: ['down'],
      after: { restartDelay: 'connecting' },
    },
    stopping: {
      tags: ['down'],
      on: { STOP: {} },
      invoke: { src: 'shutdown', onDone: 'stopped', onError: 'stopped' },
    },
    stopped: { type: 'final', tags: ['down'] },
  },
});
