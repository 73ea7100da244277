import { backoffDelayMs, errorMessage } from '@candlestream/core';
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
  problems: Record<string, string>;
}

const RESTART_BACKOFF = { initialDelayMs: 500, maxDelayMs: 30_000, jitter: 0.3 };

function notProvided(name: string): never {
  throw new Error(`actor ${name} must be provided with machine.provide()`);
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
  },
  actors: {
    connect: fromPromise<void>(() => notProvided('connect')),
    restore: fromPromise<void>(() => notProvided('restore')),
    consume: fromCallback<FixedConsumerEvent>(() => notProvided('consume')),
    shutdown: fromPromise<void>(() => notProvided('shutdown')),
  },
  delays: {
    restartDelay: ({ context }) => backoffDelayMs(context.attempt - 1, RESTART_BACKOFF),
  },
  actions: {
    recordFailure: assign({
      attempt: ({ context }) => context.attempt + 1,
      // onError events and CRASHED/SOURCE_FAILED all carry `error`.
      lastError: ({ event }) => errorMessage((event as { error?: unknown }).error ?? event.type),
    }),
    resetFailures: assign({ attempt: 0, problems: {} }),
    markProblem: assign({
      problems: ({ context, event }) =>
        event.type === 'DEGRADED'
          ? { ...context.problems, [event.check]: event.problem }
          : context.problems,
    }),
    clearProblem: assign({
      problems: ({ context, event }) => {
        if (event.type !== 'RECOVERED') return context.problems;
        const { [event.check]: _cleared, ...rest } = context.problems;
        return rest;
      },
    }),
  },
  guards: {
    allRecovered: ({ context, event }) =>
      event.type === 'RECOVERED' &&
      Object.keys(context.problems).every((check) => check === event.check),
  },
}).createMachine({
  id: 'fixedConsumer',
  initial: 'connecting',
  context: { attempt: 0, lastError: undefined, problems: {} },
  on: { STOP: '.stopping' },
  states: {
    connecting: {
      invoke: {
        src: 'connect',
        onDone: 'restoring',
        onError: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    restoring: {
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
          on: { DEGRADED: { target: 'degraded', actions: 'markProblem' } },
        },
        degraded: {
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
      after: { restartDelay: 'connecting' },
    },
    stopping: {
      on: { STOP: {} },
      invoke: { src: 'shutdown', onDone: 'stopped', onError: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});
