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

export type ProducerEvent =
  | { type: 'STOP' }
  /** The source's upstream or the broker is failing; trades wait in the bounded buffer. */
  | { type: 'DEGRADED'; check: 'source' | 'broker'; problem: string }
  | { type: 'RECOVERED'; check: 'source' | 'broker' }
  /** The source threw; `retriable` says whether starting it again may help. */
  | { type: 'SOURCE_FAILED'; error: string; retriable: boolean }
  /** A finite source (a file, a history range) has yielded everything. */
  | { type: 'SOURCE_DONE' };

export interface ProducerContext {
  attempt: number;
  lastError: string | undefined;
  problems: Problems<'source' | 'broker'>;
}

/**
 * The producer's control flow: connect to the broker, stream the source into the bounded
 * publishing buffer, and on failure back off exponentially and start again (the source resumes
 * from the newest trade published per symbol). A source that cannot succeed (a refused API key)
 * leaves the producer `failed`: alive, answering /health with the reason, publishing nothing.
 */
export const producerMachine = setup({
  types: {
    context: {} as ProducerContext,
    events: {} as ProducerEvent,
    /** /health reads these, never the state's name (STYLE). */
    tags: {} as HealthTag,
  },
  actors: {
    connect: fromPromise<void>(() => notProvided('connect')),
    stream: fromCallback<ProducerEvent>(() => notProvided('stream')),
    drain: fromPromise<void>(() => notProvided('drain')),
    shutdown: fromPromise<void>(() => notProvided('shutdown')),
  },
  delays: {
    restartDelay: ({ context }) => restartDelayMs(context.attempt, 60_000),
  },
  actions: {
    recordFailure: assign({
      attempt: ({ context }) => context.attempt + 1,
      lastError: ({ event }) => failureMessage(event),
    }),
    markProblem: assign({ problems: ({ context, event }) => withProblem(context.problems, event) }),
    clearProblem: assign({
      problems: ({ context, event }) => withoutProblem(context.problems, event),
    }),
    /** A source that streamed again counts as recovered; the next failure starts a fresh backoff. */
    resetFailures: assign({ attempt: 0 }),
  },
  guards: {
    retriable: ({ event }) => event.type === 'SOURCE_FAILED' && event.retriable,
    allRecovered: ({ context, event }) => allRecovered(context.problems, event),
  },
}).createMachine({
  id: 'producer',
  initial: 'connecting',
  context: { attempt: 0, lastError: undefined, problems: {} },
  on: { STOP: '.stopping' },
  states: {
    connecting: {
      tags: ['degraded'],
      invoke: {
        src: 'connect',
        onDone: 'streaming',
        onError: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    streaming: {
      invoke: { src: 'stream' },
      initial: 'healthy',
      states: {
        healthy: {
          tags: ['healthy'],
          after: { 30_000: { actions: 'resetFailures' } },
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
        SOURCE_FAILED: [
          { guard: 'retriable', target: 'backingOff', actions: 'recordFailure' },
          { target: 'failed', actions: 'recordFailure' },
        ],
        SOURCE_DONE: 'draining',
      },
    },
    backingOff: {
      tags: ['down'],
      after: { restartDelay: 'connecting' },
    },
    draining: {
      tags: ['degraded'],
      invoke: {
        src: 'drain',
        onDone: 'done',
        onError: { target: 'failed', actions: 'recordFailure' },
      },
    },
    done: { type: 'final', tags: ['healthy'] },
    failed: { tags: ['down'] },
    stopping: {
      tags: ['down'],
      on: { STOP: {} },
      invoke: { src: 'shutdown', onDone: 'stopped', onError: 'stopped' },
    },
    stopped: { type: 'final', tags: ['down'] },
  },
});
