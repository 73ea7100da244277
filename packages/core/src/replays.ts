/**
 * Replays (docs/REPLAY.md): a session publishes stored history as trades on its own topic,
 * `replay.<session>`, never into the live series. The chart's sessions are hosted by the
 * simulator service and driven over two topics:
 *
 * - `replay-commands` (datastore → simulator): a ReplayCommand, key = session.
 * - `replay-status` (simulator → datastore): a ReplaySessionStatus on every change and at least
 *   every REPLAY_HEARTBEAT_MS while the session lives, key = session.
 */
import Joi from 'joi';
import type { Interval } from './intervals.js';
import { INTERVALS } from './intervals.js';
import type { MarketSymbol } from './symbols.js';
import { isCanonicalSymbol } from './symbols.js';
import type { EpochMs } from './time.js';
import { MAX_TICK_TS_MS, MIN_TICK_TS_MS } from './ticks.js';
import type { Decoded } from './validation.js';
import { parseJsonMessage, validateWith } from './validation.js';

/** Session names go into topic names: Kafka allows [A-Za-z0-9._-]; dots are kept for ours. */
export const REPLAY_SESSION_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The topic a session publishes to unless told another. */
export function replayTopicName(session: string): string {
  return `replay.${session}`;
}

/**
 * The chart's sessions are named `chart-<random>` by the datastore; the simulator service deletes
 * topics of that name nobody hosts (a killed run's) and never a command-line session's.
 */
export const CHART_REPLAY_PREFIX = 'chart-';

/** Simulated seconds per wall second; `max` is as fast as the broker takes them. */
export type ReplaySpeed = number | 'max';
export const MIN_REPLAY_SPEED = 0.1;
export const MAX_REPLAY_SPEED = 1_000_000;

export const REPLAY_MESSAGE_VERSION = 1;
/** A hosted session sends its status at least this often while it lives, ms. */
export const REPLAY_HEARTBEAT_MS = 1_000;
/** The most symbols one session replays. */
export const MAX_REPLAY_SYMBOLS = 20;
const MAX_REPLAY_MESSAGE_BYTES = 8 * 1_024;

export const REPLAY_SESSION_STATES = ['preparing', 'playing', 'paused', 'ended', 'failed'] as const;
export type ReplaySessionState = (typeof REPLAY_SESSION_STATES)[number];
export const ENDED_REPLAY_STATES: readonly ReplaySessionState[] = ['ended', 'failed'];
/** Why a session ended: its range was done, it was told to end, or nobody touched it in time. */
export type ReplayEndReason = 'done' | 'quit' | 'idle';

interface CommandBase {
  v: typeof REPLAY_MESSAGE_VERSION;
  session: string;
}

/** What the datastore asks of the simulator about one session. */
export type ReplayCommand =
  | (CommandBase & {
      type: 'create';
      symbols: MarketSymbol[];
      from: EpochMs;
      to: EpochMs;
      speed: ReplaySpeed;
    })
  /** `touch`: somebody still watches; keeps the session from being removed as idle. */
  | (CommandBase & { type: 'play' | 'pause' | 'touch' | 'end' })
  /** Publish the rest of the current bar of `interval`, then stay paused. */
  | (CommandBase & { type: 'step'; interval: Interval })
  | (CommandBase & { type: 'seek'; to: EpochMs })
  | (CommandBase & { type: 'speed'; speed: ReplaySpeed });

export type ReplayCommandType = ReplayCommand['type'];

/** A hosted session as the simulator reports it. */
export interface ReplaySessionStatus {
  v: typeof REPLAY_MESSAGE_VERSION;
  session: string;
  state: ReplaySessionState;
  symbols: MarketSymbol[];
  from: EpochMs;
  to: EpochMs;
  speed: ReplaySpeed;
  /** Every trade before it has been published; null before the first. */
  simTime: EpochMs | null;
  /** Of the range, 0..100. */
  percent: number;
  /** Trades published so far. */
  messages: number;
  /** Trades per second over the last second. */
  rate: number;
  /** Where the trades go. */
  topic: string;
  /** Set once ended. */
  reason?: ReplayEndReason;
  /** Set when failed: what went wrong. */
  error?: string;
  /** When the simulator reported it (its clock). */
  at: EpochMs;
}

const session = Joi.string().pattern(REPLAY_SESSION_PATTERN).required();
const instant = Joi.number().integer().min(MIN_TICK_TS_MS).max(MAX_TICK_TS_MS);
const version = Joi.number().valid(REPLAY_MESSAGE_VERSION).required();
const speed = Joi.alternatives()
  .try(Joi.number().min(MIN_REPLAY_SPEED).max(MAX_REPLAY_SPEED), Joi.string().valid('max'))
  .required();
const symbols = Joi.array()
  .items(
    Joi.string().custom((value: string, helpers) =>
      isCanonicalSymbol(value)
        ? value
        : helpers.message({
            custom: `symbol ${JSON.stringify(value)} is not canonical BASE-QUOTE`,
          }),
    ),
  )
  .min(1)
  .max(MAX_REPLAY_SYMBOLS)
  .unique()
  .required();
const range = { symbols, from: instant.required(), to: instant.required() };

const commandSchema = Joi.alternatives().conditional('.type', {
  switch: [
    { is: 'create', then: Joi.object({ v: version, type: Joi.any(), session, ...range, speed }) },
    {
      is: Joi.string().valid('play', 'pause', 'touch', 'end'),
      then: Joi.object({ v: version, type: Joi.any(), session }),
    },
    {
      is: 'step',
      then: Joi.object({
        v: version,
        type: Joi.any(),
        session,
        interval: Joi.string()
          .valid(...INTERVALS)
          .required(),
      }),
    },
    {
      is: 'seek',
      then: Joi.object({ v: version, type: Joi.any(), session, to: instant.required() }),
    },
    { is: 'speed', then: Joi.object({ v: version, type: Joi.any(), session, speed }) },
  ],
  otherwise: Joi.any().custom((_value, helpers) =>
    helpers.message({
      custom: 'replay command type must be create, play, pause, step, seek, speed, touch or end',
    }),
  ),
});

const statusSchema = Joi.object<ReplaySessionStatus>({
  v: version,
  session,
  state: Joi.string()
    .valid(...REPLAY_SESSION_STATES)
    .required(),
  ...range,
  speed,
  simTime: instant.allow(null).required(),
  percent: Joi.number().min(0).max(100).required(),
  messages: Joi.number().integer().min(0).required(),
  rate: Joi.number().min(0).required(),
  topic: Joi.string().max(249).required(),
  reason: Joi.string().valid('done', 'quit', 'idle'),
  error: Joi.string().max(2_000),
  at: Joi.number().integer().min(0).required(),
});

function decodeWith<T>(schema: Joi.Schema, raw: Uint8Array | string, what: string): Decoded<T> {
  const parsed = parseJsonMessage(raw, MAX_REPLAY_MESSAGE_BYTES);
  if (!parsed.ok) return parsed;
  const decoded = validateWith(schema as Joi.Schema<T>, parsed.value);
  return decoded.ok ? decoded : { ok: false, reason: `${what}: ${decoded.reason}` };
}

export function decodeReplayCommand(raw: Uint8Array | string): Decoded<ReplayCommand> {
  const decoded = decodeWith<ReplayCommand>(commandSchema, raw, 'replay command');
  if (decoded.ok && decoded.value.type === 'create' && decoded.value.to <= decoded.value.from)
    return { ok: false, reason: 'replay command: to must be after from' };
  return decoded;
}

export function decodeReplayStatus(raw: Uint8Array | string): Decoded<ReplaySessionStatus> {
  return decodeWith<ReplaySessionStatus>(statusSchema, raw, 'replay status');
}

export function encodeReplayMessage(message: ReplayCommand | ReplaySessionStatus): string {
  return JSON.stringify(message);
}
