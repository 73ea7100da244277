/**
 * The datastore's side of backfills (docs/BACKFILLS.md): asking for history on
 * `backfill-requests`, answering for jobs (the coordinator's `backfill_jobs` table, and requests
 * this process published that the coordinator has not recorded yet), and deciding when a history
 * request has reached a range storage lacks.
 */
import { randomUUID } from 'node:crypto';
import type {
  BackfillProgress,
  BackfillRequest,
  BackfillStatus,
  Clock,
  EpochMs,
  MarketSymbol,
  TimeRange,
} from '@candlestream/core';
import {
  AppError,
  BACKFILL_MESSAGE_VERSION,
  ENDED_BACKFILL_STATUSES,
  errorMessage,
  MAX_BACKFILL_SPAN_MS,
  MINUTE_MS,
  minuteAligned,
  missingRanges,
  sleep,
  subtractRanges,
  toIso,
} from '@candlestream/core';
import type { BackfillJob, BackfillJobs, Repository } from '@candlestream/db';
import type { Logger } from '@candlestream/logger';

/** A job as the API shows it: times ISO-8601, absent ones null. */
export interface BackfillView {
  id: string;
  symbol: MarketSymbol;
  from: string;
  to: string;
  status: BackfillStatus;
  progress: BackfillProgress;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  unavailable: { from: string; to: string; reason: string; stored?: string }[];
  requestedBy: string | null;
}

/**
 * The job a history request started or joined, as /ohlcv names it; after `?wait` saw it end,
 * also what the source could not provide (`stored`: coarser candles kept instead).
 */
export interface BackfillHandle {
  id: string;
  status: BackfillStatus;
  unavailable?: BackfillView['unavailable'];
}

/** Requests this process published, remembered so GET /backfills/:id answers before the table does. */
const MAX_SUBMISSIONS = 1_000;
/** A published request not yet in the table counts as running this long (the coordinator records within ms). */
const PENDING_MS = 10_000;
/** Identical misses within this window publish one request (a chart asks in bursts). */
export const MISS_DEBOUNCE_MS = 5_000;
const MAX_RECENT_MISSES = 1_000;
/**
 * Holes are looked for in the newest 7 days of a history request: finding them reads every stored
 * minute of the range (measured: ~45-85 ms for 30 days, ~2-5 ms for one, on this machine). Older
 * parts of a wider request count as stored from the symbol's first stored minute on; a range
 * before that minute is seen at any width (one index lookup).
 */
export const HOLE_SCAN_MS = 7 * 24 * 60 * MINUTE_MS;
/** A symbol's stored coverage is read at most once a second (a burst of requests shares it). */
export const COVERAGE_TTL_MS = 1_000;
/** ?wait polls the job this often. */
export const WAIT_POLL_MS = 250;
export const MAX_WAIT_MS = 30_000;

interface Submission {
  request: BackfillRequest;
  /** Set when publishing failed: the request never reached the coordinator. */
  error?: string;
}

interface Coverage {
  at: EpochMs;
  extent: { first: EpochMs; last: EpochMs } | undefined;
  /** The window the islands were read over, and the islands (1m runs) in it. */
  window: TimeRange | undefined;
  islands: TimeRange[];
}

export interface BackfillDeskOptions {
  jobs: BackfillJobs;
  repository: Pick<Repository, 'coveredRanges' | 'bucketExtent'>;
  /** Sends one request on backfill-requests (key = symbol). */
  publish: (request: BackfillRequest) => Promise<void>;
  clock: Clock;
  logger: Logger;
}

function isoOrNull(ms: EpochMs | null): string | null {
  return ms === null ? null : toIso(ms);
}

export function jobView(job: BackfillJob): BackfillView {
  return {
    id: job.id,
    symbol: job.symbol,
    from: toIso(job.from),
    to: toIso(job.to),
    status: job.status,
    progress: { done: job.progress.done, total: job.progress.total },
    createdAt: toIso(job.createdAt),
    updatedAt: toIso(job.updatedAt),
    startedAt: isoOrNull(job.startedAt),
    finishedAt: isoOrNull(job.finishedAt),
    error: job.error,
    unavailable: job.unavailable.map((u) => ({
      from: toIso(u.from),
      to: toIso(u.to),
      reason: u.reason,
      ...(u.stored ? { stored: u.stored } : {}),
    })),
    requestedBy: job.requestedBy,
  };
}

function submissionView({ request, error }: Submission): BackfillView {
  const at = toIso(request.requestedAt);
  return {
    id: request.id,
    symbol: request.symbol,
    from: toIso(request.from),
    to: toIso(request.to),
    status: error === undefined ? 'queued' : 'failed',
    progress: { done: 0, total: 0 },
    createdAt: at,
    updatedAt: at,
    startedAt: null,
    finishedAt: error === undefined ? null : at,
    error: error ?? null,
    unavailable: [],
    requestedBy: request.requestedBy ?? null,
  };
}

/** Drops the oldest entries of an insertion-ordered map beyond `max`. */
function bound<K, V>(map: Map<K, V>, max: number): void {
  for (const key of map.keys()) {
    if (map.size <= max) return;
    map.delete(key);
  }
}

function overlaps(a: TimeRange, b: TimeRange): boolean {
  return a.from < b.to && b.from < a.to;
}

export class BackfillDesk {
  readonly #jobs: BackfillJobs;
  readonly #repository: BackfillDeskOptions['repository'];
  readonly #publish: BackfillDeskOptions['publish'];
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #submitted = new Map<string, Submission>();
  readonly #misses = new Map<string, { handle: BackfillHandle; at: EpochMs }>();
  readonly #coverage = new Map<MarketSymbol, Coverage>();
  /** Requests published because a history request missed, for /health and tests. */
  missesPublished = 0;

  constructor(options: BackfillDeskOptions) {
    this.#jobs = options.jobs;
    this.#repository = options.repository;
    this.#publish = options.publish;
    this.#clock = options.clock;
    this.#log = options.logger.child({ component: 'backfills' });
  }

  /** POST /backfills: publishes the request and answers with its queued view. */
  async submit(symbol: MarketSymbol, range: TimeRange, requestedBy: string): Promise<BackfillView> {
    const submission = this.#remember(symbol, range, requestedBy);
    try {
      await this.#publish(submission.request);
    } catch (err) {
      this.#submitted.delete(submission.request.id);
      this.#log.warn('backfill request not published', { err: errorMessage(err) });
      throw new AppError('UNAVAILABLE', 'the broker did not take the request; try again shortly', {
        cause: err,
      });
    }
    this.#log.info('backfill requested', { id: submission.request.id, symbol, requestedBy });
    return submissionView(submission);
  }

  /** The job as recorded, else as this process published it, else undefined. */
  async view(id: string): Promise<BackfillView | undefined> {
    const job = await this.#jobs.get(id);
    if (job) return jobView(job);
    const submission = this.#submitted.get(id);
    return submission ? submissionView(submission) : undefined;
  }

  async recent(limit: number, symbol?: MarketSymbol): Promise<BackfillView[]> {
    return (await this.#jobs.recent(limit, symbol)).map(jobView);
  }

  /**
   * A history request for `wanted` of `symbol`: when part of it is neither stored, nor fetched
   * by a done job, nor being fetched, a backfill is requested (without waiting for the broker:
   * the request is answered at once with what is stored). Returns the job started or joined.
   */
  async onHistoryRequest(
    symbol: MarketSymbol,
    wanted: TimeRange,
    requestedBy: string,
  ): Promise<BackfillHandle | undefined> {
    const aligned = minuteAligned(wanted);
    const now = this.#clock.now();
    // What storage holds is known in memory; the jobs table is asked only about what it lacks,
    // so a request for stored history costs no query.
    const stored = await this.#stored(symbol, aligned);
    if (missingRanges(aligned, stored, now).length === 0) return undefined;
    const [fetched, active] = await Promise.all([
      this.#jobs.fetchedRanges(symbol, aligned.from, aligned.to),
      this.#jobs.active(symbol),
    ]);
    const missing = missingRanges(aligned, [...stored, ...fetched], now);
    if (missing.length === 0) return undefined;
    // From here on synchronous: concurrent misses see each other's requests.
    const running: (TimeRange & BackfillHandle)[] = active.map((j) => ({
      id: j.id,
      status: j.status,
      from: j.from,
      to: j.to,
    }));
    const known = new Set(running.map((r) => r.id));
    for (const { request, error } of this.#submitted.values()) {
      if (error !== undefined || known.has(request.id) || request.symbol !== symbol) continue;
      if (now - request.requestedAt > PENDING_MS) continue;
      running.push({ id: request.id, status: 'queued', from: request.from, to: request.to });
    }
    const left = missing.flatMap((m) => subtractRanges(m, running));
    const first = left[0];
    const last = left[left.length - 1];
    if (!first || !last) {
      const joined = running.find((r) => missing.some((m) => overlaps(m, r)));
      return joined ? { id: joined.id, status: joined.status } : undefined;
    }
    // One request for the span of what is left (the coordinator plans the exact minutes); the
    // newest part when it is wider than one request may be (the older part on a later request).
    const span = { from: Math.max(first.from, last.to - MAX_BACKFILL_SPAN_MS), to: last.to };
    const key = `${symbol} ${span.from} ${span.to}`;
    const recent = this.#misses.get(key);
    if (recent && now - recent.at < MISS_DEBOUNCE_MS) return recent.handle;
    const submission = this.#remember(symbol, span, requestedBy);
    const handle: BackfillHandle = { id: submission.request.id, status: 'queued' };
    this.#misses.delete(key);
    this.#misses.set(key, { handle, at: now });
    bound(this.#misses, MAX_RECENT_MISSES);
    this.missesPublished += 1;
    this.#log.info('history missing: backfill requested', {
      id: handle.id,
      symbol,
      from: toIso(span.from),
      to: toIso(span.to),
      requestedBy,
    });
    this.#publish(submission.request).catch((err: unknown) => {
      // Seen as failed by GET /backfills/:id and ?wait; the next miss asks again.
      submission.error = `the broker did not take the request: ${errorMessage(err)}`;
      if (this.#misses.get(key)?.handle === handle) this.#misses.delete(key);
      this.#log.warn('backfill request not published', { id: handle.id, err: errorMessage(err) });
    });
    return handle;
  }

  /** Polls job `id` until it has ended or `timeoutMs` passed; its last known state. */
  async waitFor(
    id: string,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<BackfillView | undefined> {
    const deadline = this.#clock.now() + timeoutMs;
    for (;;) {
      const view = await this.view(id);
      const left = deadline - this.#clock.now();
      if (!view || ENDED_BACKFILL_STATUSES.includes(view.status) || left <= 0 || signal?.aborted)
        return view;
      try {
        await sleep(Math.min(WAIT_POLL_MS, left), signal, this.#clock);
      } catch {
        return view; // the client went away
      }
    }
  }

  #remember(symbol: MarketSymbol, range: TimeRange, requestedBy: string): Submission {
    const request: BackfillRequest = {
      v: BACKFILL_MESSAGE_VERSION,
      id: randomUUID(),
      symbol,
      from: range.from,
      to: range.to,
      requestedAt: this.#clock.now(),
      requestedBy,
    };
    const submission: Submission = { request };
    this.#submitted.set(request.id, submission);
    bound(this.#submitted, MAX_SUBMISSIONS);
    return submission;
  }

  /** Stored 1m runs of `symbol` over `wanted`, bounded and cached as HOLE_SCAN_MS says. */
  async #stored(symbol: MarketSymbol, wanted: TimeRange): Promise<TimeRange[]> {
    const now = this.#clock.now();
    let coverage = this.#coverage.get(symbol);
    if (!coverage || now - coverage.at >= COVERAGE_TTL_MS) {
      coverage = {
        at: now,
        extent: await this.#repository.bucketExtent(symbol),
        window: undefined,
        islands: [],
      };
      this.#coverage.set(symbol, coverage);
      bound(this.#coverage, MAX_RECENT_MISSES);
    }
    const { extent } = coverage;
    if (!extent) return [];
    const storedTo = extent.last + MINUTE_MS;
    const scan = {
      from: Math.max(wanted.from, wanted.to - HOLE_SCAN_MS, extent.first),
      to: Math.min(wanted.to, storedTo),
    };
    const out: TimeRange[] = [];
    const assumed = {
      from: Math.max(wanted.from, extent.first),
      to: Math.min(scan.from, storedTo),
    };
    if (assumed.to > assumed.from) out.push(assumed);
    if (scan.to > scan.from) {
      const window = coverage.window;
      if (!window || window.from > scan.from || window.to < scan.to) {
        coverage.islands = await this.#repository.coveredRanges(symbol, scan.from, scan.to);
        coverage.window = scan;
      }
      out.push(...coverage.islands);
    }
    return out;
  }
}
