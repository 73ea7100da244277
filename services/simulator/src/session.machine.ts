import type { EpochMs, Interval, ReplayEndReason, ReplaySessionState } from '@candlestream/core';
import type { HealthTag } from '@candlestream/runtime/machine';
import { failureMessage, notProvided } from '@candlestream/runtime/machine';
import { assign, fromCallback, fromPromise, sendTo, setup } from 'xstate';
import type { ReplaySummary } from './replay/engine.js';
import type { ReplayRange, ReplaySpeed, ReplayStatus } from './replay/types.js';

/** Controls, from the keyboard, signals, HTTP or the session's command topic. */
export type ControlEvent =
  | { type: 'PAUSE' }
  | { type: 'RESUME' }
  /** Publish the rest of the current bar of `interval` (weeks open on Mondays), then stay paused. */
  | { type: 'STEP'; interval: Interval }
  | { type: 'SEEK'; to: EpochMs }
  | { type: 'SPEED'; speed: ReplaySpeed }
  /** End the replay where it stands; `idle`: nobody touched the hosted session in time. */
  | { type: 'QUIT'; reason?: 'idle' };

/** What the replay actor says about itself. */
export type ReplayEvent =
  | { type: 'REPLAY.STATUS'; status: ReplayStatus }
  | { type: 'REPLAY.ENDED'; summary: ReplaySummary }
  | { type: 'REPLAY.FAILED'; error: string };

export type SessionEvent = ControlEvent | ReplayEvent;

/** What one session replays, and where to. */
export interface ReplayPlan {
  range: ReplayRange;
  speed: ReplaySpeed;
  topic: string;
}

export interface SessionInput {
  /** Start paused (the chart's sessions wait for play). */
  paused: boolean;
  plan: ReplayPlan;
}

/**
 * What the `report` action hands on: the session's state and the engine's last status; an
 * `ended` without a reason is the engine's word ahead of the machine's final report.
 */
export interface SessionReport {
  state: ReplaySessionState;
  status: ReplayStatus | undefined;
  reason?: ReplayEndReason;
  error?: string;
}

export interface SessionContext {
  status: ReplayStatus | undefined;
  summary: ReplaySummary | undefined;
  error: string | undefined;
  paused: boolean;
  plan: ReplayPlan;
  /** Set by QUIT: why the session ends before its range does. */
  quit: 'quit' | 'idle' | undefined;
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
    prepare: fromPromise<void, ReplayPlan>(() => notProvided('prepare')),
    /** Runs the engine: takes ControlEvents, sends back ReplayEvents. */
    replay: fromCallback<ControlEvent, { paused: boolean; plan: ReplayPlan }>(() =>
      notProvided('replay'),
    ),
  },
  actions: {
    /** Hands a control to the engine. */
    forward: sendTo('replay', ({ event }) => event),
    rememberQuit: assign({
      quit: ({ event }) => (event.type === 'QUIT' && event.reason === 'idle' ? 'idle' : 'quit'),
    }),
    /**
     * Tells whoever hosts the session how it stands (the simulator service publishes it on
     * replay-status); the command line reads the snapshot instead and leaves this empty.
     */
    report: (_, _params: SessionReport) => {},
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
    plan: input.plan,
    quit: undefined,
  }),
  initial: 'preparing',
  states: {
    preparing: {
      tags: ['healthy'],
      entry: { type: 'report', params: { state: 'preparing', status: undefined } },
      invoke: {
        src: 'prepare',
        input: ({ context }) => context.plan,
        onDone: 'running',
        onError: {
          target: 'failed',
          actions: assign({ error: ({ event }) => failureMessage(event) }),
        },
      },
      on: {
        QUIT: { target: 'ended', actions: 'rememberQuit' },
        // The engine starts as last asked; other controls wait for it (the host answers with
        // the first status after preparing, so nobody sends them sooner).
        PAUSE: { actions: assign({ paused: true }) },
        RESUME: { actions: assign({ paused: false }) },
      },
    },
    running: {
      invoke: {
        id: 'replay',
        src: 'replay',
        input: ({ context }) => ({ paused: context.paused, plan: context.plan }),
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
        QUIT: { actions: ['rememberQuit', 'forward'] },
        'REPLAY.STATUS': {
          actions: [
            assign({ status: ({ event }) => event.status }),
            {
              type: 'report',
              // An engine status saying ended (just before REPLAY.ENDED) carries no reason: the
              // final state's report, which follows at once, is the one to tell.
              params: ({ event }) => ({ state: event.status.state, status: event.status }),
            },
          ],
        },
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
    ended: {
      type: 'final',
      tags: ['healthy', 'ended'],
      entry: {
        type: 'report',
        params: ({ context }) => ({
          state: 'ended',
          status: context.status,
          reason: context.quit ?? 'done',
        }),
      },
    },
    failed: {
      type: 'final',
      tags: ['down', 'failed'],
      entry: {
        type: 'report',
        params: ({ context }) => ({
          state: 'failed',
          status: context.status,
          error: context.error ?? 'the replay failed',
        }),
      },
    },
  },
});
