import { failureMessage, notProvided, restartDelayMs } from '@candlestream/runtime/machine';
import { assign, fromCallback, fromPromise, setup } from 'xstate';

export type DatastoreEvent =
  | { type: 'STOP' }
  /** The bar-updates consumer crashed; the live view starts over after a backoff. */
  | { type: 'CRASHED'; error: string };

export interface DatastoreContext {
  attempt: number;
  lastError: string | undefined;
}

/**
 * The datastore's control flow. HTTP is served in every state (history comes from storage, which
 * each request reaches on its own); what the machine runs is the live side: connect to storage
 * and the broker, then follow `bar-updates` for the forming bars and /stream; on failure back off
 * and connect again. While not `live`, /health says degraded: answers lack the newest updates.
 */
export const datastoreMachine = setup({
  types: { context: {} as DatastoreContext, events: {} as DatastoreEvent },
  actors: {
    connect: fromPromise<void>(() => notProvided('connect')),
    follow: fromCallback<DatastoreEvent>(() => notProvided('follow')),
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
    resetFailures: assign({ attempt: 0 }),
  },
}).createMachine({
  id: 'datastore',
  initial: 'connecting',
  context: { attempt: 0, lastError: undefined },
  on: { STOP: '.stopping' },
  states: {
    connecting: {
      invoke: {
        src: 'connect',
        onDone: 'live',
        onError: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    live: {
      entry: 'resetFailures',
      invoke: { src: 'follow' },
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
