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

export type DatastoreEvent =
  | { type: 'STOP' }
  /** The bar-updates or backfill-status consumer crashed; both start over after a backoff. */
  | { type: 'CRASHED'; error: string }
  /** A dependency of the live side stopped answering (the broker probe), or answers again. */
  | { type: 'DEGRADED'; check: string; problem: string }
  | { type: 'RECOVERED'; check: string };

export interface DatastoreContext {
  attempt: number;
  lastError: string | undefined;
  /** Dependencies of the live side failing right now, by check name. */
  problems: Problems;
}

/**
 * The datastore's control flow. HTTP is served in every state (history comes from storage, which
 * each request reaches on its own); what the machine runs is the live side: connect to storage
 * and the broker, then follow `bar-updates` for the forming bars and /stream, and `backfill-status`
 * for the backfills that ended (/stream tells the page to reload); on failure back off
 * and connect again. While not `live`, /health says degraded: answers lack the newest updates.
 */
export const datastoreMachine = setup({
  types: {
    context: {} as DatastoreContext,
    events: {} as DatastoreEvent,
    /** /health reads these, never the state's name (STYLE). */
    tags: {} as HealthTag,
  },
  actors: {
    connect: fromPromise<void>(() => notProvided('connect')),
    follow: fromCallback<DatastoreEvent>(() => notProvided('follow')),
    followBackfills: fromCallback<DatastoreEvent>(() => notProvided('followBackfills')),
    /** replay-status into the replay desk: /replays and /stream's replay messages. */
    followReplays: fromCallback<DatastoreEvent>(() => notProvided('followReplays')),
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
  id: 'datastore',
  initial: 'connecting',
  context: { attempt: 0, lastError: undefined, problems: {} },
  on: { STOP: '.stopping' },
  states: {
    connecting: {
      tags: ['degraded'],
      invoke: {
        src: 'connect',
        onDone: 'live',
        onError: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    live: {
      entry: 'resetFailures',
      // bar-updates for the live view, backfill-status for /stream's `history` messages, and
      // replay-status for the chart's replay sessions.
      invoke: [{ src: 'follow' }, { src: 'followBackfills' }, { src: 'followReplays' }],
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
      tags: ['degraded'],
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
