/**
 * Backfills: history the database lacks, fetched on demand (docs/BACKFILLS.md). The messages the
 * services exchange about them, and the range arithmetic that decides what is missing.
 *
 * - `backfill-requests` (datastore → coordinator): a BackfillRequest, key = symbol.
 * - `backfill-commands` (coordinator → producer and dynamic consumer): a BackfillCommand, key = job
 *   id. The producer fetches the ranges into the job's topic; the dynamic consumer stores the topic.
 * - `backfill-status` (every participant → coordinator, datastore, CLI): a BackfillReport.
 * - `backfill.<SYMBOL>.<job id>`: the job's BackfillRecords, candles then one `end` (or `failed`).
 */
import Joi from 'joi';
import type { Bar } from './bars.js';
import { barProblem } from './bars.js';
import type { Interval } from './intervals.js';
import { INTERVAL_MS, isBucketAligned } from './intervals.js';
import type { MarketSymbol } from './symbols.js';
import { isCanonicalSymbol } from './symbols.js';
import type { EpochMs } from './time.js';
import { MINUTE_MS } from './time.js';
import { MAX_TICK_TS_MS, MIN_TICK_TS_MS } from './ticks.js';
import type { Decoded } from './validation.js';
import { parseJsonMessage, validateWith } from './validation.js';

export const BACKFILL_MESSAGE_VERSION = 1;
export const BACKFILL_STATUSES = ['queued', 'fetching', 'storing', 'done', 'failed'] as const;
export type BackfillStatus = (typeof BACKFILL_STATUSES)[number];
export const BACKFILL_REPORTERS = ['coordinator', 'producer', 'dynamic-consumer'] as const;
export type BackfillReporter = (typeof BACKFILL_REPORTERS)[number];
/** A job has ended (its topic may be deleted after a while). */
export const ENDED_BACKFILL_STATUSES: readonly BackfillStatus[] = ['done', 'failed'];
/** Job ids go into topic names (`backfill.<SYMBOL>.<id>`): Kafka allows [A-Za-z0-9._-]. */
export const BACKFILL_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** The longest range one request may ask for (a request beyond it is refused, not truncated). */
export const MAX_BACKFILL_SPAN_MS = 400 * 24 * 60 * MINUTE_MS;
/** Backfill messages are small; a candle batch is many messages, never one big one. */
export const MAX_BACKFILL_MESSAGE_BYTES = 64 * 1_024;

/** A half-open range of epoch ms, [from, to). */
export interface TimeRange {
  from: EpochMs;
  to: EpochMs;
}

/**
 * The bar lengths a source's candles come in. Minutes where the source has them; hours or days
 * where it only keeps those (CryptoCompare keeps about 7 days of minutes and years of hours),
 * stored so that the intervals they can answer (1h and up, or 1d and up) have the bars.
 */
export const CANDLE_SPANS = ['1m', '1h', '1d'] as const satisfies readonly Interval[];
export type CandleSpan = (typeof CANDLE_SPANS)[number];

/** For messages: "not on a minute boundary". */
export const CANDLE_SPAN_BOUNDARY: Readonly<Record<CandleSpan, string>> = {
  '1m': 'a minute',
  '1h': 'an hour',
  '1d': 'a day',
};

/** A candle of a backfill: a 1-minute bar unless `span` says it is an hour's or a day's. */
export type SpanBar = Bar & { span?: CandleSpan };

/** Where a candle ends: its open time plus its span. */
export function candleEnd(bar: SpanBar): EpochMs {
  return bar.time + INTERVAL_MS[bar.span ?? '1m'];
}

/**
 * Part of a request the source could not provide (beyond its history, or refused), and why.
 * `stored` names the coarser candles kept there instead (`1h`: its 1-minute bars are missing,
 * its hourly ones are there), absent when the source had nothing at all.
 */
export interface UnavailableRange extends TimeRange {
  reason: string;
  stored?: Exclude<CandleSpan, '1m'>;
}

export interface BackfillProgress {
  /** Minutes of the job's missing ranges stored so far. */
  done: number;
  total: number;
}

/** One backfill job as the coordinator records it (backfill_jobs), times in epoch ms. */
export interface BackfillJob {
  id: string;
  symbol: MarketSymbol;
  from: EpochMs;
  to: EpochMs;
  status: BackfillStatus;
  /** The missing minutes this job fetches (empty: nothing was missing, or all of it was claimed). */
  ranges: TimeRange[];
  /** Jobs already fetching part of this job's range; it is done only after them. */
  waitsOn: string[];
  progress: { done: number; total: number };
  topic: string | null;
  error: string | null;
  unavailable: UnavailableRange[];
  requestedBy: string | null;
  createdAt: EpochMs;
  updatedAt: EpochMs;
  startedAt: EpochMs | null;
  finishedAt: EpochMs | null;
  topicDeletedAt: EpochMs | null;
}

/** Ask for [from, to) of a symbol; `id` is chosen by the asker so it can follow the job at once. */
export interface BackfillRequest {
  v: typeof BACKFILL_MESSAGE_VERSION;
  id: string;
  symbol: MarketSymbol;
  from: EpochMs;
  to: EpochMs;
  requestedAt: EpochMs;
  /** Who asked (`api`, `chart`, `cli`, `start`), for logs and GET /backfills. */
  requestedBy?: string;
}

/** The coordinator's instruction for one job: fetch (producer) and store (dynamic consumer). */
export interface BackfillCommand {
  v: typeof BACKFILL_MESSAGE_VERSION;
  id: string;
  symbol: MarketSymbol;
  /** The job's dynamic topic, created by the coordinator before the command is sent. */
  topic: string;
  /** What is actually missing: disjoint, ascending, minute-aligned. */
  ranges: TimeRange[];
}

/** A participant's word on a job; the coordinator's reports are the job's state. */
export interface BackfillReport {
  v: typeof BACKFILL_MESSAGE_VERSION;
  id: string;
  symbol: MarketSymbol;
  status: BackfillStatus;
  reporter: BackfillReporter;
  at: EpochMs;
  progress?: BackfillProgress;
  error?: string;
  unavailable?: UnavailableRange[];
  /** The requested range (the coordinator's reports carry it). */
  from?: EpochMs;
  to?: EpochMs;
}

/** What a job's dynamic topic carries: its candles, then exactly one end (or failed) marker. */
export type BackfillRecord =
  | ({ v: typeof BACKFILL_MESSAGE_VERSION; type: 'candle'; symbol: MarketSymbol } & SpanBar)
  | {
      v: typeof BACKFILL_MESSAGE_VERSION;
      type: 'end';
      id: string;
      /** Candles written before this marker. */
      candles: number;
      unavailable: UnavailableRange[];
    }
  | { v: typeof BACKFILL_MESSAGE_VERSION; type: 'failed'; id: string; error: string };

const symbol = Joi.string()
  .required()
  .custom((value: string, helpers) =>
    isCanonicalSymbol(value)
      ? value
      : helpers.message({ custom: `symbol ${JSON.stringify(value)} is not canonical BASE-QUOTE` }),
  );
const instant = Joi.number().integer().min(MIN_TICK_TS_MS).max(MAX_TICK_TS_MS);
const id = Joi.string().pattern(BACKFILL_ID_PATTERN).required();
const range = Joi.object<TimeRange>({
  from: instant.required(),
  to: instant.required(),
});
const unavailable = Joi.object<UnavailableRange>({
  from: instant.required(),
  to: instant.required(),
  reason: Joi.string().max(500).required(),
  stored: Joi.string().valid('1h', '1d'),
});
const version = Joi.number().valid(BACKFILL_MESSAGE_VERSION).required();

const requestSchema = Joi.object<BackfillRequest>({
  v: version,
  id,
  symbol,
  from: instant.required(),
  to: instant.required(),
  requestedAt: Joi.number().integer().min(0).required(),
  requestedBy: Joi.string().max(40),
});
const commandSchema = Joi.object<BackfillCommand>({
  v: version,
  id,
  symbol,
  topic: Joi.string().max(249).required(),
  ranges: Joi.array().items(range).max(10_000).required(),
});
const reportSchema = Joi.object<BackfillReport>({
  v: version,
  id,
  symbol,
  status: Joi.string()
    .valid(...BACKFILL_STATUSES)
    .required(),
  reporter: Joi.string()
    .valid(...BACKFILL_REPORTERS)
    .required(),
  at: Joi.number().integer().min(0).required(),
  progress: Joi.object<BackfillProgress>({
    done: Joi.number().integer().min(0).required(),
    total: Joi.number().integer().min(0).required(),
  }),
  error: Joi.string().max(2_000),
  unavailable: Joi.array().items(unavailable).max(1_000),
  from: instant,
  to: instant,
});
const recordSchema = Joi.alternatives().conditional('.type', {
  switch: [
    {
      is: 'candle',
      then: Joi.object({
        v: version,
        type: Joi.string().valid('candle').required(),
        symbol,
        time: instant.required(),
        open: Joi.number().positive().required(),
        high: Joi.number().positive().required(),
        low: Joi.number().positive().required(),
        close: Joi.number().positive().required(),
        volume: Joi.number().min(0).required(),
        span: Joi.string().valid(...CANDLE_SPANS),
      }),
    },
    {
      is: 'end',
      then: Joi.object({
        v: version,
        type: Joi.string().valid('end').required(),
        id,
        candles: Joi.number().integer().min(0).required(),
        unavailable: Joi.array().items(unavailable).max(1_000).required(),
      }),
    },
    {
      is: 'failed',
      then: Joi.object({
        v: version,
        type: Joi.string().valid('failed').required(),
        id,
        error: Joi.string().max(2_000).required(),
      }),
    },
  ],
  otherwise: Joi.any().custom((_value, helpers) =>
    helpers.message({ custom: 'backfill record type must be candle, end or failed' }),
  ),
});

function decodeWith<T>(schema: Joi.Schema<T>, raw: Uint8Array | string, what: string): Decoded<T> {
  const parsed = parseJsonMessage(raw, MAX_BACKFILL_MESSAGE_BYTES);
  if (!parsed.ok) return parsed;
  const decoded = validateWith(schema, parsed.value);
  return decoded.ok ? decoded : { ok: false, reason: `${what}: ${decoded.reason}` };
}

function rangesProblem(ranges: readonly TimeRange[]): string | undefined {
  for (const r of ranges) if (r.to <= r.from) return `range ends before it starts`;
  return undefined;
}

export function decodeBackfillRequest(raw: Uint8Array | string): Decoded<BackfillRequest> {
  const decoded = decodeWith(requestSchema, raw, 'backfill request');
  if (!decoded.ok) return decoded;
  if (decoded.value.to <= decoded.value.from) {
    return { ok: false, reason: 'backfill request: to must be after from' };
  }
  return decoded;
}

export function decodeBackfillCommand(raw: Uint8Array | string): Decoded<BackfillCommand> {
  const decoded = decodeWith(commandSchema, raw, 'backfill command');
  if (!decoded.ok) return decoded;
  const problem = rangesProblem(decoded.value.ranges);
  return problem ? { ok: false, reason: `backfill command: ${problem}` } : decoded;
}

export function decodeBackfillReport(raw: Uint8Array | string): Decoded<BackfillReport> {
  return decodeWith(reportSchema, raw, 'backfill report');
}

export function decodeBackfillRecord(raw: Uint8Array | string): Decoded<BackfillRecord> {
  const decoded = decodeWith(recordSchema as Joi.Schema<BackfillRecord>, raw, 'backfill record');
  if (!decoded.ok || decoded.value.type !== 'candle') return decoded;
  const span = decoded.value.span ?? '1m';
  const problem =
    barProblem(decoded.value) ??
    (isBucketAligned(decoded.value.time, span)
      ? undefined
      : `time is not on ${CANDLE_SPAN_BOUNDARY[span]} boundary`);
  return problem ? { ok: false, reason: `backfill record: candle ${problem}` } : decoded;
}

/** The message value of any backfill message (they are all plain JSON objects). */
export function encodeBackfillMessage(
  message: BackfillRequest | BackfillCommand | BackfillReport | BackfillRecord,
): string {
  return JSON.stringify(message);
}

/** A candle record for a job's topic (`span` written only for hours and days). */
export function candleRecord(symbolName: MarketSymbol, bar: SpanBar): BackfillRecord {
  const { span, ...rest } = bar;
  return {
    v: BACKFILL_MESSAGE_VERSION,
    type: 'candle',
    symbol: symbolName,
    ...rest,
    ...(span && span !== '1m' ? { span } : {}),
  };
}

/** The dynamic topic of a job, as the contract names it. */
export function backfillTopicName(symbolName: MarketSymbol, jobId: string): string {
  return `backfill.${symbolName}.${jobId}`;
}

/** Sorted, merged copy of `ranges` (touching ranges join). */
export function mergeRanges(ranges: readonly TimeRange[]): TimeRange[] {
  const sorted = ranges.filter((r) => r.to > r.from).sort((a, b) => a.from - b.from);
  const out: TimeRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to) last.to = Math.max(last.to, r.to);
    else out.push({ from: r.from, to: r.to });
  }
  return out;
}

/** The parts of `wanted` that none of `covered` covers, ascending and disjoint. */
export function subtractRanges(wanted: TimeRange, covered: readonly TimeRange[]): TimeRange[] {
  const out: TimeRange[] = [];
  let cursor = wanted.from;
  for (const c of mergeRanges(covered)) {
    if (c.to <= cursor) continue;
    if (c.from >= wanted.to) break;
    if (c.from > cursor) out.push({ from: cursor, to: c.from });
    cursor = Math.max(cursor, c.to);
    if (cursor >= wanted.to) break;
  }
  if (cursor < wanted.to) out.push({ from: cursor, to: wanted.to });
  return out;
}

/** `range` widened to whole minutes: a backfill fetches and stores minutes. */
export function minuteAligned(r: TimeRange): TimeRange {
  return {
    from: Math.floor(r.from / MINUTE_MS) * MINUTE_MS,
    to: Math.ceil(r.to / MINUTE_MS) * MINUTE_MS,
  };
}

/** Whole minutes in `ranges` (which are minute-aligned). */
export function minutesIn(ranges: readonly TimeRange[]): number {
  return ranges.reduce((n, r) => n + Math.round((r.to - r.from) / MINUTE_MS), 0);
}

/** The live stream is taken to cover the time since its newest stored minute, if that is this recent. */
export const LIVE_TAIL_MS = 10 * MINUTE_MS;

/**
 * What a backfill of `wanted` must fetch: its minutes (before the current one) that no range of
 * `covered` holds (stored minutes, ranges done jobs fetched, ranges running jobs are fetching).
 * The time after the newest covered minute is left to the live stream when that minute ended
 * less than `liveTailMs` before `now`: live trades are arriving there.
 */
export function missingRanges(
  wanted: TimeRange,
  covered: readonly TimeRange[],
  now: EpochMs,
  liveTailMs: number = LIVE_TAIL_MS,
): TimeRange[] {
  const currentMinute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const aligned = minuteAligned(wanted);
  const clipped = { from: aligned.from, to: Math.min(aligned.to, currentMinute) };
  if (clipped.to <= clipped.from) return [];
  const merged = mergeRanges(covered);
  const newest = merged[merged.length - 1];
  const withLive =
    newest && newest.to >= now - liveTailMs ? [...merged, { from: newest.to, to: now }] : merged;
  return subtractRanges(clipped, withLive);
}
