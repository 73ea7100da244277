import type { EpochMs, ReplayCommand, ReplaySessionStatus } from '@candlestream/core';
import { MINUTE_MS, REPLAY_MESSAGE_VERSION, replayTopicName } from '@candlestream/core';
import type { HealthTag, Problems } from '@candlestream/runtime/machine';
import {
  allRecovered,
  failureMessage,
  notProvided,
  restartDelayMs,
  withoutProblem,
  withProblem,
} from '@candlestream/runtime/machine';
import type { ActorRefFrom } from 'xstate';
import { assign, enqueueActions, fromCallback, fromPromise, sendParent, setup } from 'xstate';
import type {
  ControlEvent,
  ReplayPlan,
  SessionContext,
  SessionEvent,
  SessionReport,
} from './session.machine.js';
import { sessionMachine } from './session.machine.js';

/** A status for the outbox: everything but the time it goes out at. */
export type OutgoingStatus = Omit<ReplaySessionStatus, 'at'>;

/** What the simulator's actors send its machine. */
export type SimulatorEvent =
  | { type: 'STOP' }
  | { type: 'DEGRADED'; check: string; problem: string }
  | { type: 'RECOVERED'; check: string }
  | { type: 'CRASHED'; error: string }
  /** A command from replay-commands, with when it arrived. */
  | { type: 'COMMAND'; command: ReplayCommand; at: EpochMs }
  /** A hosted session's report (the session machine's `report`, sent to its parent). */
  | { type: 'SESSION.STATUS'; session: string; report: SessionReport }
  /** Time to remove sessions nobody touched in `idleMs`. */
  | { type: 'SWEEP'; now: EpochMs };

/** What the machine hands the outbox actor. */
export type OutboxEvent =
  { type: 'PUBLISH'; status: OutgoingStatus } | { type: 'DELETE_TOPICS'; topics: string[] };

/** One session the simulator hosts. */
export interface HostedSession {
  ref: ActorRefFrom<typeof sessionMachine>;
  plan: ReplayPlan;
  /** When a command last named it. */
  touchedAt: EpochMs;
  /** Its last state as reported (ended and failed sessions stay until removed, for their status). */
  last: OutgoingStatus;
}

export interface SimulatorContext {
  attempt: number;
  lastError: string | undefined;
  problems: Problems;
  sessions: Record<string, HostedSession>;
  /** Most sessions hosted at once. */
  maxSessions: number;
  /** A session no command named for this long is removed, its topic deleted. */
  idleMs: number;
  /** Session topics a previous run left (it was killed), deleted once idle too. */
  orphans: { topics: string[]; since: EpochMs } | undefined;
  /** Commands handled, for /health. */
  commands: number;
}

export interface SimulatorInput {
  maxSessions: number;
  idleMs: number;
}

/** What `connect` finds: session topics nobody hosts any more, and when it looked. */
export interface ConnectOutput {
  orphanTopics: string[];
  at: EpochMs;
}

/** A hosted session machine's `report`: its status to this machine, named by its id. */
export const reportToParent = sendParent<
  SessionContext,
  SessionEvent,
  SessionReport,
  SimulatorEvent,
  SessionEvent
>(({ self }, report) => ({
  type: 'SESSION.STATUS' as const,
  session: self.id,
  report,
}));

/** The state a session machine's report stands for, as the status topic says it. */
function statusOf(plan: ReplayPlan, session: string, report: SessionReport): OutgoingStatus {
  const engine = report.status;
  return {
    v: REPLAY_MESSAGE_VERSION,
    session,
    state: report.state,
    symbols: [...plan.range.symbols],
    from: plan.range.from,
    to: plan.range.to,
    speed: engine?.speed ?? plan.speed,
    simTime: engine ? engine.simTime : null,
    percent: engine?.percent ?? 0,
    messages: engine?.messages ?? 0,
    rate: engine?.rate ?? 0,
    topic: plan.topic,
    ...(report.reason ? { reason: report.reason } : {}),
    ...(report.error ? { error: report.error } : {}),
  };
}

/** A status for a session the simulator does not host (never had, or lost in a restart). */
function unknownSession(command: ReplayCommand): OutgoingStatus {
  const create = command.type === 'create' ? command : undefined;
  return {
    v: REPLAY_MESSAGE_VERSION,
    session: command.session,
    state: 'failed',
    symbols: create ? create.symbols : [],
    from: create?.from ?? 0,
    to: create?.to ?? 0,
    speed: create?.speed ?? 1,
    simTime: null,
    percent: 0,
    messages: 0,
    rate: 0,
    topic: '',
    error:
      'the simulator does not host this session (it was removed as idle, or the simulator restarted); start a new replay',
  };
}

/** The engine control a command stands for. */
function controlOf(command: ReplayCommand): ControlEvent | undefined {
  switch (command.type) {
    case 'play':
      return { type: 'RESUME' };
    case 'pause':
      return { type: 'PAUSE' };
    case 'step':
      return { type: 'STEP', interval: command.interval };
    case 'seek':
      return { type: 'SEEK', to: command.to };
    case 'speed':
      return { type: 'SPEED', speed: command.speed };
    case 'end':
      return { type: 'QUIT' };
    default:
      return undefined;
  }
}

const ENDED = new Set(['ended', 'failed']);

/**
 * The simulator service (docs/REPLAY.md): connect (broker, topics, database), then host the
 * chart's replay sessions. The commands actor hands each command on replay-commands to the
 * machine: `create` spawns a session machine (at most `maxSessions`), the controls go to theirs,
 * and every session reports back; the outbox publishes those reports on replay-status and
 * deletes the topics of sessions removed as idle. A crashed consumer backs off and starts over
 * from connect; sessions keep playing meanwhile.
 */
export const simulatorMachine = setup({
  types: {
    context: {} as SimulatorContext,
    events: {} as SimulatorEvent,
    input: {} as SimulatorInput,
    tags: {} as HealthTag,
  },
  actors: {
    connect: fromPromise<ConnectOutput>(() => notProvided('connect')),
    /** Consumes replay-commands into COMMAND events. */
    commands: fromCallback<SimulatorEvent>(() => notProvided('commands')),
    /** Takes OutboxEvents: publishes statuses (a heartbeat's worth at most), deletes topics. */
    outbox: fromCallback<OutboxEvent>(() => notProvided('outbox')),
    /** Sends SWEEP now and then. */
    ticker: fromCallback<SimulatorEvent, { everyMs: number }>(() => notProvided('ticker')),
    /** Consumers leave; the sessions still running are reported as stopped with the service. */
    shutdown: fromPromise<void, { running: OutgoingStatus[] }>(() => notProvided('shutdown')),
    /** service.ts provides its prepare and replay actors (keeping `reportToParent`). */
    session: sessionMachine.provide({ actions: { report: reportToParent } }),
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
    rememberOrphans: assign({
      orphans: ({ context, event }) => {
        const found = (event as unknown as { output: ConnectOutput }).output;
        const hosted = new Set(Object.values(context.sessions).map((s) => s.plan.topic));
        const topics = found.orphanTopics.filter((t) => !hosted.has(t));
        return topics.length > 0 ? { topics, since: found.at } : context.orphans;
      },
    }),
    /**
     * One command: `create` spawns the session (a repeated delivery of one it hosts changes
     * nothing), the others go to their session as controls; a session the simulator does not
     * host is answered as failed, so whoever asked hears why.
     */
    handleCommand: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'COMMAND') return;
      const { command, at } = event;
      enqueue.assign({ commands: context.commands + 1 });
      const hosted = context.sessions[command.session];
      if (command.type === 'create') {
        if (hosted) return;
        if (Object.keys(context.sessions).length >= context.maxSessions) {
          enqueue.sendTo('outbox', {
            type: 'PUBLISH',
            status: {
              ...unknownSession(command),
              error: `the simulator hosts at most ${String(context.maxSessions)} sessions; end one or try later`,
            },
          } satisfies OutboxEvent);
          return;
        }
        const plan: ReplayPlan = {
          range: { symbols: command.symbols, from: command.from, to: command.to },
          speed: command.speed,
          topic: replayTopicName(command.session),
        };
        enqueue.assign({
          sessions: ({ context: c, spawn }) => ({
            ...c.sessions,
            [command.session]: {
              ref: spawn('session', {
                id: command.session,
                input: { paused: true, plan },
              }),
              plan,
              touchedAt: at,
              last: statusOf(plan, command.session, { state: 'preparing', status: undefined }),
            },
          }),
        });
        return;
      }
      if (!hosted) {
        // A touch of a session that is gone is answered too: the page then knows to stop.
        enqueue.sendTo('outbox', {
          type: 'PUBLISH',
          status: unknownSession(command),
        } satisfies OutboxEvent);
        return;
      }
      enqueue.assign({
        sessions: ({ context: c }) => ({
          ...c.sessions,
          [command.session]: { ...hosted, touchedAt: at },
        }),
      });
      const control = controlOf(command);
      if (control && !ENDED.has(hosted.last.state)) enqueue.sendTo(hosted.ref, control);
      // A session that ended says so again to whoever still asks of it.
      else if (ENDED.has(hosted.last.state))
        enqueue.sendTo('outbox', { type: 'PUBLISH', status: hosted.last } satisfies OutboxEvent);
    }),
    /** A session's report: kept as its last status and published. */
    relayStatus: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SESSION.STATUS') return;
      const hosted = context.sessions[event.session];
      if (!hosted) return;
      // The engine's own `ended` comes just before the machine's final report with the reason.
      if (event.report.state === 'ended' && !event.report.reason) return;
      const status = statusOf(hosted.plan, event.session, event.report);
      enqueue.assign({
        sessions: ({ context: c }) => ({
          ...c.sessions,
          [event.session]: { ...hosted, last: status },
        }),
      });
      enqueue.sendTo('outbox', { type: 'PUBLISH', status } satisfies OutboxEvent);
    }),
    /**
     * Removes every session no command named for `idleMs`: a running one ends (reason idle) and
     * is removed on the next sweep; an ended one is stopped and its topic deleted. Orphaned
     * topics of a previous run go the same way once as old.
     */
    sweep: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SWEEP') return;
      const idleSince = event.now - context.idleMs;
      const removed: string[] = [];
      const topics: string[] = [];
      for (const [id, hosted] of Object.entries(context.sessions)) {
        if (hosted.touchedAt > idleSince) continue;
        if (!ENDED.has(hosted.last.state)) {
          enqueue.sendTo(hosted.ref, { type: 'QUIT', reason: 'idle' });
          continue;
        }
        enqueue.stopChild(hosted.ref);
        removed.push(id);
        topics.push(hosted.plan.topic);
      }
      const orphans = context.orphans;
      if (orphans && orphans.since <= idleSince) {
        topics.push(...orphans.topics);
        enqueue.assign({ orphans: undefined });
      }
      if (removed.length > 0) {
        enqueue.assign({
          sessions: ({ context: c }) =>
            Object.fromEntries(Object.entries(c.sessions).filter(([id]) => !removed.includes(id))),
        });
      }
      if (topics.length > 0)
        enqueue.sendTo('outbox', { type: 'DELETE_TOPICS', topics } satisfies OutboxEvent);
    }),
  },
  guards: {
    allRecovered: ({ context, event }) => allRecovered(context.problems, event),
  },
}).createMachine({
  id: 'simulator',
  initial: 'connecting',
  context: ({ input }) => ({
    attempt: 0,
    lastError: undefined,
    problems: {},
    sessions: {},
    maxSessions: input.maxSessions,
    idleMs: input.idleMs,
    orphans: undefined,
    commands: 0,
  }),
  // The outbox and the sweeps live as long as the service: sessions play through a restart of
  // the commands consumer, and their statuses must go out meanwhile.
  invoke: [
    { id: 'outbox', src: 'outbox' },
    {
      src: 'ticker',
      input: ({ context }) => ({ everyMs: Math.min(MINUTE_MS, Math.max(250, context.idleMs / 4)) }),
    },
  ],
  on: {
    STOP: '.stopping',
    'SESSION.STATUS': { actions: 'relayStatus' },
    SWEEP: { actions: 'sweep' },
  },
  states: {
    connecting: {
      tags: ['degraded'],
      invoke: {
        src: 'connect',
        onDone: { target: 'running', actions: 'rememberOrphans' },
        onError: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    running: {
      entry: 'resetFailures',
      invoke: { src: 'commands' },
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
        COMMAND: { actions: 'handleCommand' },
        CRASHED: { target: 'backingOff', actions: 'recordFailure' },
      },
    },
    backingOff: {
      tags: ['down'],
      after: { restartDelay: 'connecting' },
    },
    stopping: {
      tags: ['down'],
      on: { STOP: {}, 'SESSION.STATUS': {}, SWEEP: {} },
      invoke: {
        src: 'shutdown',
        input: ({ context }) => ({
          running: Object.values(context.sessions)
            .map((s) => s.last)
            .filter((s) => !ENDED.has(s.state)),
        }),
        onDone: 'stopped',
        onError: 'stopped',
      },
    },
    stopped: { type: 'final', tags: ['down'] },
  },
});
