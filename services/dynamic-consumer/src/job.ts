import type {
  BackfillCommand,
  BackfillRecord,
  BackfillReport,
  BackfillStatus,
  Bar,
  BarUpdate,
  CandleSpan,
  Clock,
  MarketSymbol,
  UnavailableRange,
} from '@candlestream/core';
import {
  AppError,
  BACKFILL_MESSAGE_VERSION,
  decodeBackfillRecord,
  encodeBackfillMessage,
  errorMessage,
  floorBucket,
  INTERVAL_MS,
  INTERVALS,
  MINUTE_MS,
  minutesIn,
  sleep,
} from '@candlestream/core';
import type { Repository } from '@candlestream/db';
import type {
  BatchContext,
  ConsumedBatch,
  ConsumedMessage,
  KafkaClient,
  KafkaPublisher,
  OutgoingMessage,
} from '@candlestream/kafka';
import { BatchConsumer, DLQ_HEADERS, fitDeadLetter, readTopicTail } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Counter } from '@candlestream/runtime';
import type { Retrier } from './retrying.js';
import { isDataError } from '@candlestream/db';

/** Progress goes on backfill-status at most this often while a job stores (and at its end). */
export const PROGRESS_INTERVAL_MS = 1_000;
/** Reading a finished job topic's last record (to tell a job already stored), ms. */
export const TAIL_READ_TIMEOUT_MS = 10_000;
/** The `source` column of the minutes a backfill stores (docs/STORAGE.md). */
export const BACKFILL_SOURCE = 'backfill';
export const REPORTER = 'dynamic-consumer';
/** How long a job waits for its end's batch to be committed before it leaves the group, ms. */
export const COMMIT_WAIT_MS = 5_000;
const COMMIT_POLL_MS = 50;
/** BackfillReport.error's limit (packages/core backfills.ts). */
const MAX_REPORT_ERROR_CHARS = 2_000;

export interface JobMetrics {
  records: Counter;
  stored: Counter;
  skipped: Counter;
  dead: Counter;
  updates: Counter;
}

/** What a job is given: built once in service.ts, shared by every job. */
export interface JobDeps {
  kafka: KafkaClient;
  publisher: KafkaPublisher;
  repository: Repository;
  /** Event time: which buckets are closed, report times, DLQ times, the progress throttle. */
  clock: Clock;
  /** Real waiting: polling for the end's commit. */
  waitClock: Clock;
  logger: Logger;
  retrier: Retrier;
  metrics: JobMetrics;
  /** The dynamic consumer's group; a job's consumer joins `<groupId>.<job id>`. */
  groupId: string;
  topics: { status: string; barUpdates: string; dlq: string };
}

/** How a job's part here ended: stored to its end or failed marker, or nothing to store. */
export type JobOutcome =
  | { status: 'done' | 'failed'; done: number; total: number }
  | { status: 'skipped'; reason: string };

/** A job's progress for /health. */
export interface JobProgress {
  id: string;
  symbol: MarketSymbol;
  topic: string;
  done: number;
  total: number;
}

type Terminal = Extract<BackfillRecord, { type: 'end' | 'failed' }>;

/** A candle of a batch and the record it came in (for the DLQ, should storage refuse it). */
interface Candle {
  bar: Bar;
  span: CandleSpan;
  message: ConsumedMessage;
}

/** The candles cut into runs of one span, in order: each run is one upsert. */
function runsBySpan(candles: readonly Candle[]): Candle[][] {
  const runs: Candle[][] = [];
  for (const c of candles) {
    const run = runs.at(-1);
    if (run && run[0]!.span === c.span) run.push(c);
    else runs.push([c]);
  }
  return runs;
}

function sameBar(a: Bar | undefined, b: Bar): boolean {
  return (
    a !== undefined &&
    a.open === b.open &&
    a.high === b.high &&
    a.low === b.low &&
    a.close === b.close &&
    a.volume === b.volume
  );
}

/**
 * One backfill job's storing: a consumer of its dynamic topic in the job's own group, so a
 * restart resumes after the last batch committed (KafkaJS cannot add a topic to a running
 * consumer, and a pattern subscription misses topics created after it joined: a consumer per
 * job, docs/BACKFILLS.md). Each batch, in an order that survives a crash at any point:
 *
 * 1. decode; malformed records go to the DLQ with the reason and are skipped;
 * 2. upsert the candles into bars_1m (a minute with trades keeps its tick-derived bar, and a
 *    candle written twice changes nothing), then refresh the aggregates over the batch's span;
 * 3. announce the closed bars the candles now make, at every interval, as finals on
 *    bar-updates, so the datastore drops its cached chunks (read back from storage after the
 *    write, so a repeat of the batch announces them again rather than never: at least once);
 * 4. report progress; the consumer commits the batch.
 *
 * At the `end` (or `failed`) record the job reports done (or failed) and its consumer stops.
 */
export class BackfillJob {
  readonly command: BackfillCommand;
  readonly total: number;
  readonly #d: JobDeps;
  readonly #log: Logger;
  readonly #group: string;
  #done = 0;
  #lastReportAt = Number.NEGATIVE_INFINITY;
  #ended: ((outcome: JobOutcome) => void) | undefined;
  /** Offset of the end (or failed) marker, once handled. */
  #terminalOffset: string | undefined;

  constructor(command: BackfillCommand, deps: JobDeps) {
    this.command = command;
    this.total = minutesIn(command.ranges);
    this.#d = deps;
    this.#group = `${deps.groupId}.${command.id}`;
    this.#log = deps.logger.child({ component: 'job', job: command.id, topic: command.topic });
  }

  progress(): JobProgress {
    const { id, symbol, topic } = this.command;
    return { id, symbol, topic, done: this.#done, total: this.total };
  }

  /**
   * Stores the job's topic up to its end marker and resolves with the outcome. Rejects with
   * `CANCELLED` when `signal` aborts first (the job did not end; its command stays uncommitted),
   * and with the crash when its consumer crashed, which the owner treats as a crash of its own.
   */
  async run(signal: AbortSignal): Promise<JobOutcome> {
    const started = Date.now();
    const position = await this.#position(signal);
    if (position.kind === 'missing') {
      // Deleted after the job ended long ago (BACKFILL_TOPIC_TTL_MS), or never created: there is
      // nothing to wait for, and waiting would hold every command behind this one.
      this.#log.warn('job topic does not exist; command skipped', { symbol: this.command.symbol });
      return { status: 'skipped', reason: 'topic does not exist' };
    }
    this.#done = Math.min(this.total, position.committed);
    if (position.kind === 'ended') {
      // Stored to its end before (the command's commit was lost to a crash): say so again.
      this.#log.info('job already stored; reporting its end again');
      return this.#finish(position.terminal, signal, undefined);
    }
    await this.#report('storing', signal);
    this.#log.info('job storing', {
      symbol: this.command.symbol,
      ranges: this.command.ranges.length,
      total: this.total,
      resumedAt: position.committed,
    });

    let consumer: BatchConsumer | undefined;
    try {
      const outcome = await new Promise<JobOutcome>((resolve, reject) => {
        this.#ended = resolve;
        const cancelled = (): void =>
          reject(new AppError('CANCELLED', `job ${this.command.id} stopped before its end`));
        if (signal.aborted) return cancelled();
        signal.addEventListener('abort', cancelled, { once: true });
        consumer = new BatchConsumer(this.#d.kafka, {
          groupId: this.#group,
          topics: [this.command.topic],
          fromBeginning: true,
          onCrash: reject,
        });
        consumer.start((batch, context) => this.#handle(batch, context, signal)).catch(reject);
      });
      await this.#committedPast(this.#terminalOffset, signal);
      this.#log.info('job ended', { ...outcome, durationMs: Date.now() - started });
      return outcome;
    } finally {
      this.#ended = undefined;
      await consumer
        ?.stop()
        .catch((err: unknown) => this.#log.warn('job consumer stop failed', { err }));
    }
  }

  /**
   * Waits (bounded) until the group has committed past the end marker, which the batch consumer
   * does just after the handler resolves: stopping before would skip that commit, and a command
   * delivered again would read the end's batch again instead of finding the job stored to its
   * end. Past the bound it goes on: a lost commit only repeats that batch, which changes nothing.
   */
  async #committedPast(offset: string | undefined, signal: AbortSignal): Promise<void> {
    if (offset === undefined) return;
    const { kafka, waitClock } = this.#d;
    const target = BigInt(offset) + 1n;
    const deadline = waitClock.now() + COMMIT_WAIT_MS;
    const admin = kafka.admin();
    try {
      await admin.connect();
      while (!signal.aborted && waitClock.now() < deadline) {
        const [group] = await admin.fetchOffsets({
          groupId: this.#group,
          topics: [this.command.topic],
        });
        if (BigInt(group?.partitions[0]?.offset ?? -1) >= target) return;
        await sleep(COMMIT_POLL_MS, signal, waitClock);
      }
      this.#log.warn('end marker not seen committed; leaving the group anyway', { offset });
    } catch (err) {
      if (!signal.aborted) this.#log.warn("checking the end marker's commit failed", { err });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Where the job's group stands on its topic: gone, stored to its end, or to be consumed. */
  async #position(
    signal: AbortSignal,
  ): Promise<
    | { kind: 'missing' }
    | { kind: 'ended'; committed: number; terminal: Terminal }
    | { kind: 'consume'; committed: number }
  > {
    const { topic } = this.command;
    const { kafka, retrier } = this.#d;
    const offsets = await retrier.run('kafka', signal, undefined, async () => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        if (!(await admin.listTopics()).includes(topic)) return undefined;
        const [end] = await admin.fetchTopicOffsets(topic);
        const [group] = await admin.fetchOffsets({ groupId: this.#group, topics: [topic] });
        const committed = Number(group?.partitions[0]?.offset ?? -1);
        return { high: Number(end?.high ?? 0), low: Number(end?.low ?? 0), committed };
      } finally {
        await admin.disconnect();
      }
    });
    if (offsets === undefined) return { kind: 'missing' };
    const committed = Math.max(0, offsets.committed);
    if (offsets.committed < 0 || committed < offsets.high || offsets.high <= offsets.low) {
      return { kind: 'consume', committed };
    }
    // Everything committed: stored to its end if the last record is the end (or failed) marker;
    // otherwise the producer has not written it yet and the consumer waits for it.
    const [last] = await retrier.run('kafka', signal, undefined, () =>
      readTopicTail(kafka, topic, { perPartition: 1, timeoutMs: TAIL_READ_TIMEOUT_MS }),
    );
    const decoded = last ? decodeBackfillRecord(last.value ?? '') : undefined;
    if (decoded?.ok && decoded.value.type !== 'candle' && decoded.value.id === this.command.id) {
      return { kind: 'ended', committed, terminal: decoded.value };
    }
    return { kind: 'consume', committed };
  }

  async #handle(batch: ConsumedBatch, { heartbeat, signal }: BatchContext, jobSignal: AbortSignal) {
    const ended = this.#ended;
    // Records after the end marker (there should be none) or after a stop are not this job's.
    if (!ended) return;
    const both = AbortSignal.any([signal, jobSignal]);
    if (both.aborted) throw new AppError('CANCELLED', 'job consumer stopped before the batch ran');
    const started = Date.now();
    const { symbol, id } = this.command;
    const candles = new Map<string, Candle>();
    const dead: OutgoingMessage[] = [];
    let received = 0;
    let terminal: Terminal | undefined;
    for (const message of batch.messages) {
      if (terminal) {
        this.#log.warn('records after the end marker ignored', { offset: message.offset });
        break;
      }
      const decoded = decodeBackfillRecord(message.value ?? '');
      if (!decoded.ok) {
        dead.push(this.#deadLetter(message, decoded.reason));
        continue;
      }
      const record = decoded.value;
      if (record.type === 'candle') {
        if (record.symbol !== symbol) {
          dead.push(
            this.#deadLetter(message, `candle of ${record.symbol} on job ${id} of ${symbol}`),
          );
        } else {
          // decodeBackfillRecord has refused a candle not on its span's boundary.
          const { time, open, high, low, close, volume } = record;
          const span = record.span ?? '1m';
          // One row per period in a statement (ON CONFLICT cannot touch a row twice); the later wins.
          const key = `${span} ${time}`;
          candles.delete(key);
          candles.set(key, { bar: { time, open, high, low, close, volume }, span, message });
          received += this.#minutesInRanges(time, time + INTERVAL_MS[span]);
        }
      } else if (record.id !== id) {
        dead.push(
          this.#deadLetter(
            message,
            `${record.type} marker of job ${record.id} on job ${id}'s topic`,
          ),
        );
      } else {
        terminal = record;
        this.#terminalOffset = message.offset;
      }
    }
    this.#d.metrics.records.inc(batch.messages.length);

    await this.#publish(this.#d.topics.dlq, dead, both, heartbeat);
    this.#d.metrics.dead.inc(dead.length);
    const sorted = [...candles.values()].sort((a, b) => a.bar.time - b.bar.time);
    const { written, updates } = await this.#store(sorted, both, heartbeat);
    this.#done = Math.min(this.total, this.#done + received);

    if (terminal) {
      this.#ended = undefined;
      ended(await this.#finish(terminal, both, heartbeat));
    } else if (this.#d.clock.now() - this.#lastReportAt >= PROGRESS_INTERVAL_MS) {
      await this.#report('storing', both, heartbeat);
    }
    this.#log.debug('batch stored', {
      records: batch.messages.length,
      candles: sorted.length,
      written,
      dead: dead.length,
      updates,
      done: this.#done,
      total: this.total,
      durationMs: Date.now() - started,
    });
  }

  /** Minutes of [from, to) inside the job's ranges: what a candle adds to its progress. */
  #minutesInRanges(from: number, to: number): number {
    let ms = 0;
    for (const r of this.command.ranges)
      ms += Math.max(0, Math.min(to, r.to) - Math.max(from, r.from));
    return Math.round(ms / MINUTE_MS);
  }

  /** Reports the end (done with what the source could not provide) or the failure. */
  async #finish(
    terminal: Terminal,
    signal: AbortSignal,
    heartbeat: (() => Promise<void>) | undefined,
  ): Promise<JobOutcome> {
    if (terminal.type === 'end') {
      await this.#report('done', signal, heartbeat, { unavailable: terminal.unavailable });
      return { status: 'done', done: this.#done, total: this.total };
    }
    await this.#report('failed', signal, heartbeat, {
      error: terminal.error.slice(0, MAX_REPORT_ERROR_CHARS),
    });
    return { status: 'failed', done: this.#done, total: this.total };
  }

  async #report(
    status: BackfillStatus,
    signal: AbortSignal,
    heartbeat?: () => Promise<void>,
    extra: { unavailable?: UnavailableRange[]; error?: string } = {},
  ): Promise<void> {
    const at = this.#d.clock.now();
    const report: BackfillReport = {
      v: BACKFILL_MESSAGE_VERSION,
      id: this.command.id,
      symbol: this.command.symbol,
      status,
      reporter: REPORTER,
      at,
      progress: { done: this.#done, total: this.total },
      ...extra,
    };
    await this.#publish(
      this.#d.topics.status,
      [{ key: this.command.id, value: encodeBackfillMessage(report) }],
      signal,
      heartbeat,
    );
    this.#lastReportAt = at;
  }

  /** Stores the batch's candles, a run of one span at a time, in time order. */
  async #store(
    candles: readonly Candle[],
    signal: AbortSignal,
    heartbeat: () => Promise<void>,
  ): Promise<{ written: number; updates: number }> {
    let written = 0;
    let updates = 0;
    for (const run of runsBySpan(candles)) {
      const stored = await this.#storeRun(run, run[0]!.span, signal, heartbeat);
      written += stored.written;
      updates += stored.updates;
    }
    return { written, updates };
  }

  /**
   * Upserts candles of one span, refreshes the aggregates over their span and announces what
   * they made. A batch the database refuses as a whole (a row it will not take) is written a
   * candle at a time, and the refused ones go to the DLQ, so one bad candle never stalls the job.
   */
  async #storeRun(
    candles: readonly Candle[],
    span: CandleSpan,
    signal: AbortSignal,
    heartbeat: () => Promise<void>,
  ): Promise<{ written: number; updates: number }> {
    if (candles.length === 0) return { written: 0, updates: 0 };
    const bars = candles.map((c) => c.bar);
    const { repository, retrier, metrics } = this.#d;
    const { symbol } = this.command;
    const upsert = (part: readonly Bar[]) =>
      retrier.run('database', signal, heartbeat, () =>
        repository.upsertCandles(symbol, part, BACKFILL_SOURCE, span),
      );
    let written = 0;
    let skipped = 0;
    try {
      ({ written, skipped } = await upsert(bars));
    } catch (err) {
      if (!isDataError(err)) throw err;
      for (const { bar, message } of candles) {
        try {
          const one = await upsert([bar]);
          written += one.written;
          skipped += one.skipped;
        } catch (rowErr) {
          if (!isDataError(rowErr)) throw rowErr;
          const reason = `refused by the database: ${errorMessage(rowErr)}`;
          await this.#publish(
            this.#d.topics.dlq,
            [this.#deadLetter(message, reason)],
            signal,
            heartbeat,
          );
          metrics.dead.inc();
        }
      }
    }
    metrics.stored.inc(written);
    metrics.skipped.inc(skipped);
    const from = bars[0]!.time;
    const to = bars[bars.length - 1]!.time + INTERVAL_MS[span];
    await retrier.run('database', signal, heartbeat, () => repository.refreshAggregates(from, to));
    const finals = await retrier.run('database', signal, heartbeat, () => this.#finals(bars, span));
    await this.#publish(
      this.#d.topics.barUpdates,
      finals.map((u) => ({ key: u.symbol, value: JSON.stringify(u) })),
      signal,
      heartbeat,
    );
    metrics.updates.inc(finals.length);
    return { written, updates: finals.length };
  }

  /**
   * The closed bars the candles now make, read back from storage, at their own interval and
   * every longer one: the bars that are the candles (a minute with trades kept its own bar, an
   * hour with minutes its own, which did not change) and the longer buckets that hold them.
   * Forming buckets are left to the live stream.
   */
  async #finals(bars: readonly Bar[], span: CandleSpan): Promise<BarUpdate[]> {
    const { repository, clock } = this.#d;
    const { symbol } = this.command;
    const width = INTERVAL_MS[span];
    const from = bars[0]!.time;
    const to = bars[bars.length - 1]!.time + width;
    const stored = new Map(
      (await repository.readBars(symbol, span, from, to)).map((b) => [b.time, b]),
    );
    const taken = bars.filter((b) => sameBar(stored.get(b.time), b)).map((b) => b.time);
    if (taken.length === 0) return [];
    const now = clock.now();
    const out: BarUpdate[] = [];
    const final = (interval: BarUpdate['interval'], bar: Bar): void => {
      if (bar.time + INTERVAL_MS[interval] <= now) {
        out.push({ v: 1, symbol, interval, bar, final: true });
      }
    };
    for (const time of taken) final(span, stored.get(time)!);
    for (const interval of INTERVALS) {
      if (INTERVAL_MS[interval] <= width) continue;
      const buckets = new Set(taken.map((m) => floorBucket(m, interval)));
      const first = Math.min(...buckets);
      const last = Math.max(...buckets) + INTERVAL_MS[interval];
      for (const bar of await repository.readBars(symbol, interval, first, last)) {
        if (buckets.has(bar.time)) final(interval, bar);
      }
    }
    return out;
  }

  async #publish(
    topic: string,
    messages: readonly OutgoingMessage[],
    signal: AbortSignal,
    heartbeat: (() => Promise<void>) | undefined,
  ): Promise<void> {
    if (messages.length === 0) return;
    const { publisher, retrier } = this.#d;
    await retrier.run('kafka', signal, heartbeat, () => publisher.send(topic, messages));
  }

  /** The original key, bytes and headers plus the DLQ's (packages/kafka DLQ_HEADERS). */
  #deadLetter(message: ConsumedMessage, reason: string): OutgoingMessage {
    this.#log.warn('record dead-lettered', { offset: message.offset, reason });
    return fitDeadLetter(
      {
        key: message.key?.toString() ?? null,
        value: message.value ?? Buffer.alloc(0),
        headers: message.headers,
      },
      this.#dlqHeaders(reason, message.partition, message.offset),
      this.#d.publisher.maxRequestBytes,
    );
  }

  #dlqHeaders(reason: string, partition: number, offset: string): Record<string, string> {
    return {
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.topic]: this.command.topic,
      [DLQ_HEADERS.partition]: String(partition),
      [DLQ_HEADERS.offset]: offset,
      [DLQ_HEADERS.failedAt]: new Date(this.#d.clock.now()).toISOString(),
    };
  }
}
