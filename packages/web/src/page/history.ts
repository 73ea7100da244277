/**
 * History on demand, as the chart page follows it (docs/BACKFILLS.md, docs/CHART.md): an /ohlcv
 * answer for a range storage lacks names the backfill it started or joined; the page waits for it
 * (the /stream `history` message, with GET /backfills/:id polled as a fallback and for progress),
 * then reads its loaded range again. Pure: main.ts does the requests and the drawing.
 */
import type { UnavailableRange } from '@candlestream/core';
import { ENDED_BACKFILL_STATUSES, INTERVAL_MS } from '@candlestream/core';
import type { Bar } from '@candlestream/datafeed';
import { historyFailed, historyLoading, historyUnavailable } from './messages.js';

/** A backfill as /ohlcv names it: `{"backfill":{"id","status"}}` (docs/API.md). */
export interface BackfillRef {
  id: string;
  status: string;
}

/** An /ohlcv answer: its bars (times epoch ms) and the backfill it started or joined, if any. */
export interface OhlcvAnswer {
  bars: Bar[];
  backfill: BackfillRef | undefined;
}

/** A job as GET /backfills/:id answers (the fields the page uses; times epoch ms). */
export interface JobView {
  id: string;
  status: string;
  progress: { done: number; total: number };
  error: string | undefined;
  unavailable: Unavailable[];
}

/** Part of a job the source could not provide; `stored` the coarser candles kept instead. */
export interface Unavailable {
  from: number;
  to: number;
  stored?: UnavailableRange['stored'];
}

/** One job the page waits for. `since` is when the page first saw it (epoch ms). */
interface Waiting {
  status: string;
  done: number;
  total: number;
  since: number;
}

export interface HistoryState {
  /** The jobs the page waits for, by id. */
  readonly waiting: Readonly<Record<string, Waiting>>;
  /** The newest failure of one of them (its error, or '' when it gave none). */
  readonly failed: string | undefined;
  /** What the source could not provide of the jobs that ended, epoch ms. */
  readonly unavailable: readonly Unavailable[];
}

export const IDLE: HistoryState = { waiting: {}, failed: undefined, unavailable: [] };

const ended = (status: string): boolean =>
  (ENDED_BACKFILL_STATUSES as readonly string[]).includes(status);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function instant(value: unknown): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw new Error(`not a time: ${JSON.stringify(value)}`);
  return ms;
}

function backfillOf(value: unknown): BackfillRef | undefined {
  if (!isRecord(value)) return undefined;
  const { id, status } = value;
  return typeof id === 'string' && typeof status === 'string' ? { id, status } : undefined;
}

/** Reads an /ohlcv body; throws saying what is off, since a chart of `NaN` prices fails far away. */
export function parseOhlcv(body: unknown): OhlcvAnswer {
  if (!isRecord(body) || !Array.isArray(body['bars'])) throw new Error('/ohlcv answered no bars');
  const bars = body['bars'].map((raw: unknown): Bar => {
    if (!isRecord(raw)) throw new Error('/ohlcv answered a bar that is not an object');
    const values = [raw['open'], raw['high'], raw['low'], raw['close'], raw['volume']];
    if (!values.every((v) => typeof v === 'number' && Number.isFinite(v)))
      throw new Error('/ohlcv answered a bar without numbers');
    const [open, high, low, close, volume] = values as number[];
    return {
      time: instant(raw['time']),
      open: open!,
      high: high!,
      low: low!,
      close: close!,
      volume,
    };
  });
  return { bars, backfill: backfillOf(body['backfill']) };
}

/** Reads a GET /backfills/:id body, or undefined when it is not a job. */
export function parseJob(body: unknown): JobView | undefined {
  const ref = backfillOf(body);
  if (!ref || !isRecord(body)) return undefined;
  const progress = isRecord(body['progress']) ? body['progress'] : {};
  const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const unavailable = Array.isArray(body['unavailable'])
    ? body['unavailable'].flatMap((u: unknown) => {
        if (!isRecord(u)) return [];
        try {
          const stored: Unavailable['stored'] =
            u['stored'] === '1h' || u['stored'] === '1d' ? u['stored'] : undefined;
          return [
            { from: instant(u['from']), to: instant(u['to']), ...(stored ? { stored } : {}) },
          ];
        } catch {
          return [];
        }
      })
    : [];
  return {
    ...ref,
    progress: { done: count(progress['done']), total: count(progress['total']) },
    error: typeof body['error'] === 'string' ? body['error'] : undefined,
    unavailable,
  };
}

/** What an /ohlcv answer's `backfill` means for the page: a job to wait for, a failure, or nothing. */
export function track(
  state: HistoryState,
  backfill: BackfillRef | undefined,
  now: number,
): HistoryState {
  if (!backfill || backfill.status === 'done') return state;
  if (backfill.status === 'failed') return { ...state, failed: '' };
  const known = state.waiting[backfill.id];
  const waiting = known
    ? { ...known, status: backfill.status }
    : { status: backfill.status, done: 0, total: 0, since: now };
  return { ...state, waiting: { ...state.waiting, [backfill.id]: waiting }, failed: undefined };
}

function without(state: HistoryState, id: string): Record<string, Waiting> {
  const { [id]: _gone, ...rest } = state.waiting;
  return rest;
}

/**
 * A job the page waits for, as GET /backfills/:id answered: its progress, or its end. `reload`:
 * storage changed (done, or failed after storing part), so the loaded range is read again.
 */
export function onJob(state: HistoryState, job: JobView): { state: HistoryState; reload: boolean } {
  const known = state.waiting[job.id];
  if (!known) {
    // Asked once after the /stream message ended the wait: only its unavailable parts are news.
    if (!ended(job.status) || job.unavailable.length === 0) return { state, reload: false };
    return {
      state: { ...state, unavailable: [...state.unavailable, ...job.unavailable] },
      reload: false,
    };
  }
  if (!ended(job.status)) {
    const waiting = { ...known, status: job.status, ...job.progress };
    return { state: { ...state, waiting: { ...state.waiting, [job.id]: waiting } }, reload: false };
  }
  return {
    state: {
      waiting: without(state, job.id),
      failed: job.status === 'failed' ? (job.error ?? '') : state.failed,
      unavailable: [...state.unavailable, ...job.unavailable],
    },
    reload: true,
  };
}

/**
 * The job's id is unknown to the datastore (a restart lost a request it had not published): the
 * page stops waiting for it and reads the range again, which asks anew if it is still missing.
 */
export function forget(state: HistoryState, id: string): HistoryState {
  return state.waiting[id] ? { ...state, waiting: without(state, id) } : state;
}

/**
 * The /stream `history` message: a backfill of the shown symbol ended. One the page waits for is
 * over (the datafeed's reset has the range read again); `askJob`: its `unavailable` parts are
 * only in GET /backfills/:id, so main.ts asks once.
 */
export function onStreamHistory(
  state: HistoryState,
  backfill: BackfillRef,
): { state: HistoryState; askJob: boolean } {
  if (!state.waiting[backfill.id] || !ended(backfill.status)) return { state, askJob: false };
  return {
    state: {
      ...state,
      waiting: without(state, backfill.id),
      failed: backfill.status === 'failed' ? '' : state.failed,
    },
    askJob: true,
  };
}

export const isLoading = (state: HistoryState): boolean => Object.keys(state.waiting).length > 0;

/** The jobs' progress together, 0-99 (100 is the line going away), when any reports one. */
export function percent(state: HistoryState): number | undefined {
  let done = 0;
  let total = 0;
  for (const job of Object.values(state.waiting)) {
    done += Math.min(job.done, job.total);
    total += job.total;
  }
  return total > 0 ? Math.min(99, Math.floor((done / total) * 100)) : undefined;
}

/**
 * The line above the chart about history, or undefined for none. `now` in epoch ms;
 * `barMs` the chart's interval: a range kept as hourly candles is no news on a 1h chart.
 */
export function historyLine(state: HistoryState, now: number, barMs = 60_000): string | undefined {
  const jobs = Object.values(state.waiting);
  if (jobs.length > 0) {
    const queued = jobs.every((j) => j.status === 'queued' && j.total === 0);
    const since = Math.min(...jobs.map((j) => j.since));
    return historyLoading(percent(state), queued ? now - since : 0);
  }
  if (state.failed !== undefined) return historyFailed(state.failed || undefined);
  const missing = state.unavailable.filter((u) => !u.stored || INTERVAL_MS[u.stored] > barMs);
  if (missing.length > 0) {
    const from = Math.min(...missing.map((u) => u.from));
    const to = Math.max(...missing.map((u) => u.to));
    const stored = missing.every((u) => u.stored) ? missing[0]!.stored : undefined;
    return historyUnavailable(from, to, now, stored);
  }
  return undefined;
}

/**
 * The visible logical range after the loaded bars were replaced (a backfill filled holes or
 * older bars): the newest visible bar stays where it was on screen, so the chart does not jump.
 * `range` is in bar indexes of `before`; both are open times in ascending order.
 */
export function keepVisible(
  range: { from: number; to: number },
  before: readonly number[],
  after: readonly number[],
): { from: number; to: number } {
  if (before.length === 0 || after.length === 0) return range;
  const anchor = Math.max(0, Math.min(before.length - 1, Math.floor(range.to)));
  const time = before[anchor]!;
  // The first bar at or after the anchor's time (it is there unless the reload dropped it).
  let lo = 0;
  let hi = after.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (after[mid]! < time) lo = mid + 1;
    else hi = mid;
  }
  const shift = lo - anchor;
  return { from: range.from + shift, to: range.to + shift };
}
