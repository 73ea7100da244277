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
  | { type: 'SOURCE_DONE' }
  /** A backfill's fetch or write is failing and being retried; live streaming goes on. */
  | { type: 'BACKFILL_DEGRADED'; problem: string }
  | { type: 'BACKFILL_RECOVERED' }
  /** The backfilling region's consumer crashed; it starts again after a backoff. */
  | { type: 'BACKFILL_FAILED'; error: string };

export type ProducerCheck = 'source' | 'broker' | 'backfill';

export interface ProducerContext {
  attempt: number;
  lastError: string | undefined;
  /** The live region's checks, and the backfilling region's own (`backfill`). */
  problems: Problems<ProducerCheck>;
  /** The backfilling region's failed starts since it last ran for a while. */
  backfillAttempt: number;
}

/** The live region's problems: the backfilling region's check does not hold it degraded. */
function liveProblems(problems: Problems<ProducerCheck>): Problems<ProducerCheck> {
  const { backfill: _backfill, ...live } = problems;
  return live;
}

/**
 * The producer's control flow, two regions side by side so neither waits on the other
 * (docs/BACKFILLS.md: historical fetches and real-time ingestion must not block each other):
 *
 * - `live`: connect to the broker, stream the source into the bounded publishing buffer, and on
 *   failure back off exponentially and start again (the source resumes from the newest trade
 *   published per symbol). A source that cannot succeed (a refused API key) leaves it `failed`:
 *   alive, answering /health with the reason, publishing nothing.
 * - `backfill`: consume backfill-commands and write each job's candles to its topic. A failing
 *   region is `degraded` (check `backfill`) and starts again after a backoff; it never stops the
 *   live region. A finite source that is done ends both (the process exits).
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
    backfill: fromCallback<ProducerEvent>(() => notProvided('backfill')),
    stream: fromCallback<ProducerEvent>(() => notProvided('stream')),
    drain: fromPromise<void>(() => notProvided('drain')),
    shutdown: fromPromise<void>(() => notProvided('shutdown')),
  },
  delays: {
    restartDelay: ({ context }) => restartDelayMs(context.attempt, 60_000),
    backfillRestartDelay: ({ context }) => restartDelayMs(context.backfillAttempt, 60_000),
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
    markBackfillProblem: assign({
      problems: ({ context, event }) =>
        event.type === 'BACKFILL_DEGRADED' || event.type === 'BACKFILL_FAILED'
          ? {
              ...context.problems,
              backfill: event.type === 'BACKFILL_DEGRADED' ? event.problem : event.error,
            }
          : context.problems,
    }),
    clearBackfillProblem: assign({ problems: ({ context }) => liveProblems(context.problems) }),
    recordBackfillFailure: assign({
      backfillAttempt: ({ context }) => context.backfillAttempt + 1,
    }),
    resetBackfillFailures: assign({ backfillAttempt: 0 }),
  },
  guards: {
    retriable: ({ event }) => event.type === 'SOURCE_FAILED' && event.retriable,
    allRecovered: ({ context, event }) => allRecovered(liveProblems(context.problems), event),
  },
}).createMachine({
  id: 'producer',
  type: 'parallel',
  context: { attempt: 0, lastError: undefined, problems: {}, backfillAttempt: 0 },
  states: {
    live: {
      initial: 'connecting',
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
            // A finite source is done: the backfilling region ends too, so the producer finishes.
            onDone: { target: ['done', '#producer.backfill.stopped'] },
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
    },
    backfill: {
      initial: 'running',
      on: { STOP: '.stopped' },
      states: {
        running: {
          invoke: { src: 'backfill' },
          initial: 'healthy',
          states: {
            healthy: {
              tags: ['healthy'],
              after: { 30_000: { actions: 'resetBackfillFailures' } },
              on: { BACKFILL_DEGRADED: { target: 'degraded', actions: 'markBackfillProblem' } },
            },
            degraded: {
              tags: ['degraded'],
              on: {
                BACKFILL_DEGRADED: { actions: 'markBackfillProblem' },
                BACKFILL_RECOVERED: { target: 'healthy', actions: 'clearBackfillProblem' },
              },
            },
          },
          on: {
            BACKFILL_FAILED: {
              target: 'backingOff',
              actions: ['markBackfillProblem', 'recordBackfillFailure'],
            },
          },
        },
        backingOff: {
          tags: ['degraded'],
          after: { backfillRestartDelay: 'running' },
          exit: 'clearBackfillProblem',
        },
        // Ended with the live region (STOP, or a finite source done); its health is the live one's.
        stopped: { type: 'final', tags: ['healthy'], on: { STOP: {} } },
      },
    },
  },
});
