import type { EpochMs } from '@candlestream/core';
import type { HealthTag } from '@candlestream/runtime/machine';
import { failureMessage, notProvided } from '@candlestream/runtime/machine';
import { assign, fromCallback, fromPromise, sendTo, setup } from 'xstate';
import type { ReplaySummary } from './replay/engine.js';
import type { ReplaySpeed, ReplayStatus } from './replay/types.js';

/** Controls, from the keyboard, signals, HTTP or the session's command topic. */
export type ControlEvent =
  | { type: 'PAUSE' }
  | { type: 'RESUME' }
  /** Publish the rest of the current bar of `barMs`, then stay paused. */
  | { type: 'STEP'; barMs: number }
  | { type: 'SEEK'; to: EpochMs }
  | { type: 'SPEED'; speed: ReplaySpeed }
  /** End the replay where it stands. */
  | { type: 'QUIT' };

/** What the replay actor says about itself. */
export type ReplayEvent =
  | { type: 'REPLAY.STATUS'; status: ReplayStatus }
  | { type: 'REPLAY.ENDED'; summary: ReplaySummary }
  | { type: 'REPLAY.FAILED'; error: string };

export type SessionEvent = ControlEvent | ReplayEvent;

export interface SessionInput {
  /** Start paused (the chart's sessions wait for play). */
  paused: boolean;
}

export interface SessionContext {
  status: ReplayStatus | undefined;
  summary: ReplaySummary | undefined;
  error: string | undefined;
  paused: boolean;
}

/** The replay's own tags beside health: what a status line or /status shows. */
export type SessionTag = HealthTag | 'playing' | 'paused' | 'ended' | 'failed';

/**
 * One replay session (docs/REPLAY.md): `prepare` (the sink's topic, connections), then the
 * `replay` actor runs the engine while the machine follows it between playing and paused; the
 * controls go to the engine through the machine, so the diagram is the whole protocol. It ends
 * when the range is done or on QUIT, and fails when the source or the sink does.
 */
export const sessionMachine = setup({
  types: {
    context: {} as SessionContext,
    events: {} as SessionEvent,
    input: {} as SessionInput,
    tags: {} as SessionTag,
  },
  actors: {
    /** Creates the session topic and connects the sink. */
    prepare: fromPromise<void>(() => notProvided('prepare')),
    /** Runs the engine: takes ControlEvents, sends back ReplayEvents. */
    replay: fromCallback<ControlEvent, { paused: boolean }>(() => notProvided('replay')),
  },
  actions: {
    /** Hands a control to the engine. */
    forward: sendTo('replay', ({ event }) => event),
  },
  guards: {
    startsPaused: ({ context }) => context.paused,
  },
}).createMachine({
  id: 'session',
  context: ({ input }) => ({
    status: undefined,
    summary: undefined,
    error: undefined,
    paused: input.paused,
  }),
  initial: 'preparing',
  states: {
    preparing: {
      tags: ['healthy'],
      invoke: {
        src: 'prepare',
        onDone: 'running',
        onError: {
          target: 'failed',
          actions: assign({ error: ({ event }) => failureMessage(event) }),
        },
      },
      on: { QUIT: 'ended' },
    },
    running: {
      invoke: {
        id: 'replay',
        src: 'replay',
        input: ({ context }) => ({ paused: context.paused }),
      },
      initial: 'starting',
      states: {
        starting: {
          always: [{ guard: 'startsPaused', target: 'paused' }, { target: 'playing' }],
        },
        playing: {
          tags: ['healthy', 'playing'],
          on: {
            PAUSE: { target: 'paused', actions: 'forward' },
            STEP: { target: 'paused', actions: 'forward' },
          },
        },
        paused: {
          tags: ['healthy', 'paused'],
          on: {
            RESUME: { target: 'playing', actions: 'forward' },
            STEP: { actions: 'forward' },
          },
        },
      },
      on: {
        SEEK: { actions: 'forward' },
        SPEED: { actions: 'forward' },
        QUIT: { actions: 'forward' },
        'REPLAY.STATUS': { actions: assign({ status: ({ event }) => event.status }) },
        'REPLAY.ENDED': {
          target: 'ended',
          // The actor reported its last status (state ended) just before.
          actions: assign({ summary: ({ event }) => event.summary }),
        },
        'REPLAY.FAILED': {
          target: 'failed',
          actions: assign({ error: ({ event }) => event.error }),
        },
      },
    },
    ended: { type: 'final', tags: ['healthy', 'ended'] },
    failed: { type: 'final', tags: ['down', 'failed'] },
  },
});
