/**
 * The producer's backfilling region (docs/BACKFILLS.md, step 4): its own consumer of
 * backfill-commands, beside live streaming. For each command it fetches the job's ranges from the
 * source, writes the candles in time order to the job's topic, then one `end` (or `failed`)
 * record, and commits the command only after that record is written, so a producer killed midway
 * gets the command again and resumes after the last candle on the topic.
 */
import type {
  BackfillCommand,
  BackfillRecord,
  BackfillReport,
  Clock,
  SpanBar,
  TimeRange,
  UnavailableRange,
} from '@candlestream/core';
import {
  AppError,
  BACKFILL_MESSAGE_VERSION,
  INTERVAL_MS,
  MINUTE_MS,
  barProblem,
  candleEnd,
  candleRecord,
  decodeBackfillCommand,
  decodeBackfillRecord,
  encodeBackfillMessage,
  errorMessage,
  minutesIn,
  retry,
  subtractRanges,
} from '@candlestream/core';
import type { BatchContext, KafkaClient, TopicSpec } from '@candlestream/kafka';
import { KafkaPublisher } from '@candlestream/kafka';
import { BatchConsumer, ensureTopics, readTopicTail } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Counter, PendingStops } from '@candlestream/runtime';
import { fromCallback } from 'xstate';
import type { ProducerEvent } from '../producer.machine.js';
import type { BackfillFetcher, NoBackfill } from '../sources/backfill-fetchers.js';
import { canBackfill, MAX_REASON_CHARS } from '../sources/backfill-fetchers.js';

/** Candle records per produce call (a candle is ~150 bytes: far below the request limit). */
export const CANDLES_PER_WRITE = 1_000;
/** Progress reports go out at most this often per job. */
export const REPORT_INTERVAL_MS = 1_000;
/** One attempt to read a job topic's last record. */
export const TAIL_READ_TIMEOUT_MS = 10_000;
/** Waits between retries of a failing fetch or write. */
export const BACKFILL_RETRY_BACKOFF = { initialDelayMs: 500, maxDelayMs: 30_000 };
/** The end record and the reports carry at most this many unavailable ranges (core's schemas). */
export const MAX_UNAVAILABLE_RANGES = 1_000;

export interface BackfillDeps {
  kafka: KafkaClient;
  /** The region's own publisher (acks=all), connected while the region runs. */
  publisher: KafkaPublisher;
  fetcher: BackfillFetcher | NoBackfill;
  groupId: string;
  commandsTopic: TopicSpec;
  statusTopic: TopicSpec;
  logger: Logger;
  clock: Clock;
  /** Consumer stops the next start and the shutdown wait for. */
  stops: PendingStops;
  candlesWritten: Counter;
  jobsFinished: Counter;
}

/** Where a job stands on its topic: over (end or failed written), or candles up to a time. */
export type TopicTail =
  | { over: true; type: 'end' | 'failed' }
  | { over: false; candles: number; resumeAt: number | undefined };

/**
 * The job topic's last record says where a job stands: an `end` or `failed` record means its
 * fetch is over (a restart after the write); a candle, that fetching resumes where it ends (an
 * hour or a day candle reaches past its start minute, and the minutes inside it were dropped).
 * The topic has one partition and only this writer, so the record's offset counts what is on it.
 */
export function tailState(
  last: { offset: string; value: Buffer | null } | undefined,
): TopicTail | { unreadable: string } {
  if (last === undefined) return { over: false, candles: 0, resumeAt: undefined };
  const decoded = decodeBackfillRecord(last.value ?? '');
  if (!decoded.ok) return { unreadable: decoded.reason };
  const record = decoded.value;
  if (record.type !== 'candle') return { over: true, type: record.type };
  return { over: false, candles: Number(last.offset) + 1, resumeAt: candleEnd(record) };
}

/** The command's ranges from `resumeAt` on (all of them when undefined). */
export function rangesFrom(
  ranges: readonly TimeRange[],
  resumeAt: number | undefined,
): TimeRange[] {
  if (resumeAt === undefined) return ranges.map((r) => ({ ...r }));
  return ranges.flatMap((r) => subtractRanges(r, [{ from: r.from, to: Math.min(r.to, resumeAt) }]));
}

/** `range` cut into pieces of at most `minutes` minutes, ascending. */
export function chunks(range: TimeRange, minutes: number): TimeRange[] {
  const out: TimeRange[] = [];
  const step = minutes * MINUTE_MS;
  for (let from = range.from; from < range.to; from += step) {
    out.push({ from, to: Math.min(range.to, from + step) });
  }
  return out;
}

/** What of a piece's fetched candles to write, and where the written ones now end. */
export interface PieceCandles {
  /** Ascending; none starts inside another, nor before `writtenUntil` came in. */
  write: SpanBar[];
  writtenUntil: number;
  /** Candles left out as invalid bars (the source's data, not ours to fix). */
  invalid: number;
}

/**
 * The candles of `piece` to write after the ones written so far, which end at `writtenUntil`:
 * those whose span overlaps the piece (an hour or a day may reach outside it), valid, in time
 * order (a coarser one first at the same time), and none starting before the end of the last one
 * kept. That drops an hour two neighbouring pieces both fetched, and at the seam where minutes
 * begin inside an hour already written, the minutes: an hour is never stored both ways.
 */
export function pieceCandles(
  candles: readonly SpanBar[],
  piece: TimeRange,
  writtenUntil: number,
): PieceCandles {
  let invalid = 0;
  const sorted = candles
    .filter((c) => candleEnd(c) > piece.from && c.time < piece.to)
    .filter((c) => barProblem(c) === undefined || (invalid++, false))
    .sort((a, b) => a.time - b.time || INTERVAL_MS[b.span ?? '1m'] - INTERVAL_MS[a.span ?? '1m']);
  const write: SpanBar[] = [];
  let until = writtenUntil;
  for (const c of sorted) {
    if (c.time < until) continue;
    write.push(c);
    until = candleEnd(c);
  }
  return { write, writtenUntil: until, invalid };
}

const sameKind = (a: UnavailableRange, b: UnavailableRange): boolean =>
  a.reason === b.reason && a.stored === b.stored;

/**
 * One list of what the source could not provide, from the pieces' lists: ascending; adjacent or
 * overlapping entries of the same reason and `stored` become one. Where entries of different
 * kinds overlap, the earlier-starting one keeps the overlap: pieces come in time order, and an
 * overlap is a coarser candle of an earlier piece reaching into the next one, which was written
 * first and so stands there.
 */
export function mergeUnavailable(entries: readonly UnavailableRange[]): UnavailableRange[] {
  const sorted = entries.filter((e) => e.to > e.from).sort((a, b) => a.from - b.from);
  const out: UnavailableRange[] = [];
  for (const entry of sorted) {
    const last = out[out.length - 1];
    if (last && entry.from <= last.to && sameKind(last, entry)) {
      last.to = Math.max(last.to, entry.to);
      continue;
    }
    const from = last ? Math.max(entry.from, last.to) : entry.from;
    if (entry.to > from) out.push({ ...entry, from });
  }
  return out;
}

/**
 * `entries` (ascending, disjoint) cut to the job's `ranges` (ascending, disjoint): a coarser
 * candle's range may reach past a range's end, where the job stored nothing.
 */
export function unavailableWithin(
  entries: readonly UnavailableRange[],
  ranges: readonly TimeRange[],
): UnavailableRange[] {
  const out: UnavailableRange[] = [];
  let first = 0;
  for (const entry of entries) {
    while (first < ranges.length && ranges[first]!.to <= entry.from) first++;
    for (let i = first; i < ranges.length && ranges[i]!.from < entry.to; i++) {
      const from = Math.max(entry.from, ranges[i]!.from);
      const to = Math.min(entry.to, ranges[i]!.to);
      if (to > from) out.push({ ...entry, from, to });
    }
  }
  return out;
}

/**
 * At most `max` entries, as the end record's schema allows: the ones past the limit become one
 * summary entry spanning them, without `stored` (it is not true of the gaps between them).
 */
export function capUnavailable(
  entries: readonly UnavailableRange[],
  max: number = MAX_UNAVAILABLE_RANGES,
): UnavailableRange[] {
  if (entries.length <= max) return [...entries];
  const rest = entries.slice(max - 1);
  const summary: UnavailableRange = {
    from: rest[0]!.from,
    to: rest[rest.length - 1]!.to,
    reason: `${rest.length} ranges not provided in full, the first: ${rest[0]!.reason}`.slice(
      0,
      MAX_REASON_CHARS,
    ),
  };
  return [...entries.slice(0, max - 1), summary];
}

/** Broker writes: anything but the broker refusing the records is worth trying again. */
const writeRetriable = (err: unknown): boolean => !AppError.is(err) || err.retriable;

interface Health {
  degraded(problem: string): void;
  recovered(): void;
}

/**
 * Fetches and writes one command's job. Resolves when the job's part here is over (end or failed
 * written, or nothing to do); rejects only when stopped (the signal) or when the job topic
 * cannot be read or written for good: then the command stays uncommitted.
 */
export async function runBackfillCommand(
  deps: BackfillDeps,
  command: BackfillCommand,
  context: BatchContext,
  health: Health = { degraded: () => {}, recovered: () => {} },
): Promise<void> {
  const closers: (() => Promise<void>)[] = [];
  try {
    await runCommand(deps, command, context, health, closers);
  } finally {
    for (const close of closers) await close().catch(() => undefined);
  }
}

async function runCommand(
  deps: BackfillDeps,
  command: BackfillCommand,
  context: BatchContext,
  health: Health,
  closers: (() => Promise<void>)[],
): Promise<void> {
  const { signal, heartbeat } = context;
  const log = deps.logger.child({ component: 'backfill', job: command.id, symbol: command.symbol });
  const started = deps.clock.now();
  let retrying = false;
  /** Retries `work` with backoff while it fails retriably, heartbeating; degraded meanwhile. */
  const persist = async <T>(
    what: string,
    work: () => Promise<T>,
    isRetriable: (err: unknown) => boolean,
  ): Promise<T> => {
    const result = await retry(work, {
      signal,
      clock: deps.clock,
      backoff: BACKFILL_RETRY_BACKOFF,
      isRetriable,
      afterWait: heartbeat,
      onRetry: ({ error, tried, delayMs }) => {
        retrying = true;
        log.warn(`backfill ${what} failed; retrying`, {
          err: errorMessage(error),
          tried,
          retryInMs: delayMs,
        });
        health.degraded(`job ${command.id}: ${what}: ${errorMessage(error)}`);
      },
    });
    if (retrying) {
      retrying = false;
      health.recovered();
    }
    return result;
  };
  /**
   * The job topic gets a publisher of its own, disconnected when the job is over: kafkajs keeps
   * every topic a producer wrote to in its metadata requests for good, and once the coordinator
   * deleted an ended job's topic, a shared producer's refresh failed and it could write to no new
   * job topic ("This server does not host this topic-partition", retried forever).
   */
  const jobPublisher = new KafkaPublisher(deps.kafka);
  closers.push(async () => {
    if (jobPublisherConnected) await jobPublisher.disconnect();
  });
  let jobPublisherConnected: Promise<void> | undefined;
  const write = (records: BackfillRecord[]): Promise<void> =>
    persist(
      'write',
      async () => {
        jobPublisherConnected ??= jobPublisher.connect().catch((err: unknown) => {
          jobPublisherConnected = undefined;
          throw err;
        });
        await jobPublisherConnected;
        await jobPublisher.send(
          command.topic,
          records.map((r) => ({ key: command.symbol, value: encodeBackfillMessage(r) })),
        );
      },
      writeRetriable,
    );
  const report = (fields: Omit<BackfillReport, 'v' | 'id' | 'symbol' | 'reporter' | 'at'>) =>
    persist(
      'report',
      () =>
        deps.publisher.send(deps.statusTopic.name, [
          {
            key: command.id,
            value: encodeBackfillMessage({
              v: BACKFILL_MESSAGE_VERSION,
              id: command.id,
              symbol: command.symbol,
              reporter: 'producer',
              at: deps.clock.now(),
              ...fields,
            }),
          },
        ]),
      writeRetriable,
    );
  const fail = async (error: string): Promise<void> => {
    await write([{ v: BACKFILL_MESSAGE_VERSION, type: 'failed', id: command.id, error }]);
    await report({ status: 'failed', error });
    deps.jobsFinished.inc(1, { outcome: 'failed' });
    log.warn('backfill failed', { error, durationMs: deps.clock.now() - started });
  };

  // (1) Where the job stands on its topic.
  const tailRecords = await persist(
    'reading the job topic',
    () =>
      readTopicTail(deps.kafka, command.topic, {
        perPartition: 1,
        timeoutMs: TAIL_READ_TIMEOUT_MS,
        clock: deps.clock,
      }),
    (err) => AppError.from(err, 'UNAVAILABLE').retriable,
  );
  const tail = tailState(tailRecords.at(-1));
  if ('unreadable' in tail) {
    // Only this region writes there: a record it cannot read is a bug; the job cannot go on.
    await fail(
      `the job topic ends with a record that is not a backfill record: ${tail.unreadable}`,
    );
    return;
  }
  if (tail.over) {
    log.info('backfill already written; nothing to do', { ended: tail.type });
    return;
  }
  if (!canBackfill(deps.fetcher)) {
    await fail(deps.fetcher.reason);
    return;
  }
  const fetcher = deps.fetcher;
  const total = minutesIn(command.ranges);
  const todo = rangesFrom(command.ranges, tail.resumeAt);
  let done = total - minutesIn(todo);
  let written = tail.candles;
  // Where the candles on the topic end: a later one starting before it is not written again.
  let writtenUntil = tail.resumeAt ?? Number.NEGATIVE_INFINITY;
  let unavailable: UnavailableRange[] = [];
  log.info('backfill fetching', {
    source: fetcher.kind,
    ranges: command.ranges.length,
    minutes: total,
    resumedAfter: tail.resumeAt === undefined ? undefined : new Date(tail.resumeAt).toISOString(),
  });
  let lastReportAt = Number.NEGATIVE_INFINITY;
  const reportProgress = async (force: boolean): Promise<void> => {
    const now = deps.clock.now();
    if (!force && now - lastReportAt < REPORT_INTERVAL_MS) return;
    lastReportAt = now;
    await report({ status: 'fetching', progress: { done, total } });
  };
  await reportProgress(true);

  // (2)-(3) Fetch each piece, write its candles in time order.
  let skipped = 0;
  for (const range of todo) {
    for (const piece of chunks(range, fetcher.chunkMinutes)) {
      let fetched;
      try {
        fetched = await persist(
          'fetch',
          () => fetcher.fetch(command.symbol, piece, signal),
          (err) => AppError.from(err).retriable,
        );
      } catch (err) {
        if (signal.aborted) throw err;
        await fail(`fetching ${new Date(piece.from).toISOString()}.. failed: ${errorMessage(err)}`);
        return;
      }
      const kept = pieceCandles(fetched.candles, piece, writtenUntil);
      const candles = kept.write;
      skipped += kept.invalid;
      for (let i = 0; i < candles.length; i += CANDLES_PER_WRITE) {
        const batch = candles.slice(i, i + CANDLES_PER_WRITE);
        await write(batch.map((c) => candleRecord(command.symbol, c)));
        written += batch.length;
        writtenUntil = candleEnd(batch[batch.length - 1]!);
        deps.candlesWritten.inc(batch.length);
      }
      // Merged as it goes: a year is ~263 pieces, each with its own entries.
      unavailable = mergeUnavailable([...unavailable, ...fetched.unavailable]);
      done += minutesIn([piece]);
      await heartbeat().catch(() => undefined);
      await reportProgress(false);
      // A synthetic fetch computes on this thread: let the live stream run between pieces.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (signal.aborted) throw new AppError('CANCELLED', 'backfill stopped');
    }
  }

  // (4) The end marker, then the last report.
  unavailable = capUnavailable(unavailableWithin(unavailable, command.ranges));
  await write([
    { v: BACKFILL_MESSAGE_VERSION, type: 'end', id: command.id, candles: written, unavailable },
  ]);
  await report({ status: 'fetching', progress: { done: total, total }, unavailable });
  deps.jobsFinished.inc(1, { outcome: 'end' });
  log.info('backfill written', {
    candles: written,
    minutes: total,
    unavailable: unavailable.length,
    invalidCandlesSkipped: skipped,
    durationMs: deps.clock.now() - started,
  });
}

/**
 * Consumes backfill-commands (its own group) one job at a time: (5) a batch's offsets are
 * committed once each of its commands is over. A malformed command is the coordinator's bug,
 * not data: logged and skipped. A crash (the broker gone for longer than kafkajs retries) ends
 * the region's run with BACKFILL_FAILED, and the machine starts it again after a backoff.
 */
export function backfillActor(deps: BackfillDeps) {
  return fromCallback<ProducerEvent>(({ sendBack }) => {
    const log = deps.logger.child({ component: 'backfill' });
    let stopped = false;
    const failed = (err: unknown): void => {
      if (stopped) return;
      stopped = true;
      sendBack({ type: 'BACKFILL_FAILED', error: errorMessage(err) });
    };
    const consumer = new BatchConsumer(deps.kafka, {
      groupId: deps.groupId,
      topics: [deps.commandsTopic.name],
      fromBeginning: true,
      onCrash: failed,
    });
    let degraded = false;
    const health: Health = {
      degraded: (problem) => {
        degraded = true;
        if (!stopped) sendBack({ type: 'BACKFILL_DEGRADED', problem });
      },
      recovered: () => {
        if (!degraded) return;
        degraded = false;
        if (!stopped) sendBack({ type: 'BACKFILL_RECOVERED' });
      },
    };
    const run = async (): Promise<void> => {
      // The previous run's consumer and publisher must be gone before these connect.
      await deps.stops.settled();
      const created = await ensureTopics(deps.kafka, [deps.commandsTopic, deps.statusTopic]);
      if (created.length > 0) log.info('topics created', { topics: created });
      await deps.publisher.connect();
      if (stopped) return;
      await consumer.start(async (batch, context) => {
        for (const message of batch.messages) {
          const decoded = decodeBackfillCommand(message.value ?? '');
          if (!decoded.ok) {
            log.warn('backfill command refused', {
              reason: decoded.reason,
              partition: batch.partition,
              offset: message.offset,
            });
            continue;
          }
          await runBackfillCommand(deps, decoded.value, context, health);
          // A job that ended (even failed) after retries leaves the region healthy again.
          health.recovered();
        }
      });
      log.info('backfill commands consumed', { group: deps.groupId });
    };
    run().catch(failed);
    return () => {
      stopped = true;
      const stopping = consumer.stop().then(() => deps.publisher.disconnect());
      stopping.catch((err: unknown) => log.warn('backfill consumer stop failed', { err }));
      deps.stops.add(stopping);
    };
  });
}
