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
export type FixedConsumerEvent =
  | { type: 'STOP' }
  | { type: 'DEGRADED'; check: string; problem: string }
  | { type: 'RECOVERED'; check: string }
  | { type: 'CRASHED'; error: string };

export interface FixedConsumerContext {
  /** Failed starts in a row; sets the backoff. */
  attempt: number;
  lastError: string | undefined;
  /** Dependencies currently failing (retried inside a batch), by check name. */
  problems: Problems;
}

/**
 * The fixed consumer's control flow. Connect (broker, database), restore the live candles from
 * storage, then consume until stopped; any failure to start or a crashed consumer backs off
 * exponentially and starts over from connect, which restores again, so the live state always
 * matches what was stored before the uncommitted messages are delivered again.
 */
export const fixedConsumerMachine = setup({
  types: {
    context: {} as FixedConsumerContext,
    events: {} as FixedConsumerEvent,
    /** /health reads these, never the state's name (STYLE). */
    tags: {} as HealthTag,
  },
  actors: {
    connect: fromPromise<void>(() => notProvided('connect')),
    restore: fromPromise<void>(() => notProvided('restore')),
    consume: fromCallback<FixedConsumerEvent>(() => notProvided('consume')),
    shutdown: fromPromise<void>(() => notProvided('shutdown')),
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
  },
  guards: {
    allRecovered: ({ context, event }) => allRecovered(context.problems, event),
  },
}).createMachine({
  id: 'fixedConsumer',
  initial: 'connecting',
  context: { attempt: 0, lastError: undefined, problems: {} },
  on: { STOP: '.stopping' },
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
