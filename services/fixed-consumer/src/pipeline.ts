import type { LiveBarStore } from '@candlestream/cache';
import type {
  Bar,
  BarUpdate,
  Clock,
  EpochMs,
  Interval,
  MarketSymbol,
  Tick,
} from '@candlestream/core';
import {
  AppError,
  coalesceUpdates,
  decodeTick,
  floorBucket,
  INTERVAL_MS,
  INTERVALS,
  LiveCandles,
  systemClock,
} from '@candlestream/core';
import type { InsertTradesResult, Repository } from '@candlestream/db';
import { isDataError } from '@candlestream/db';
import type {
  BatchContext,
  ConsumedBatch,
  ConsumedMessage,
  KafkaPublisher,
  OutgoingMessage,
} from '@candlestream/kafka';
import {
  DLQ_HEADERS,
  fitDeadLetter,
  isRefusedByBroker,
  splitForProduce,
} from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Metrics } from '@candlestream/runtime';
import { DependencyRetrier } from '@candlestream/runtime';

export interface PipelineTopics {
  dlq: string;
  barUpdates: string;
}

export interface PipelineOptions {
  repository: Repository;
  publisher: KafkaPublisher;
  liveStore: LiveBarStore;
  topics: PipelineTopics;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  latenessMs: number;
  /** Reports a failing dependency (retrying) or its recovery, for the machine and /health. */
  onHealth?: (check: string, problem: string | undefined) => void;
  /**
   * The group's lag per partition as the broker has it now (high watermark minus committed
   * offset); read at every /metrics scrape into `consumer_lag_messages`.
   */
  consumerLag?: () => Promise<ReadonlyMap<number, number>>;
  /** A dependency call unanswered this long is reported as failing while it still waits. */
  stalledAfterMs?: number;
  /**
   * Whose timers measure real waiting on dependencies (the stall report, heartbeats while a try
   * waits, retry backoffs). Default systemClock. Apart from `clock` on purpose: a test may pin
   * event time with a SimulatedClock it never advances, and still needs stalls and backoffs to
   * end; a test that drives all time passes the same SimulatedClock to both.
   */
  waitClock?: Clock;
}

/** A batch after its live step, waiting for its write. */
interface Staged {
  trades: Tick[];
  sources: ConsumedMessage[];
  lateTrades: Tick[];
  publishedAt: EpochMs;
  dead: number;
  updates: number;
}

/** Header on bar-updates: newest publication time (epoch ms) of the trades the update reflects. */
export const PUBLISHED_AT_HEADER = 'trades-published-at';
/** A symbol whose newest trade is older than this is history being replayed: no clock closing. */
export const LIVE_WINDOW_MS = 10 * 60_000;
/**
 * What the fixed consumer does with each batch of `tick-data`, in an order chosen so a crash at
 * any point loses nothing and counts nothing twice:
 *
 * 1. decode; refused messages go to the DLQ with the reason and their original bytes;
 * 2. apply trades to the live candles (in memory), publish the resulting bar updates and put
 *    them in the live cache;
 * 3. store the trades (idempotent) — the database is the record;
 * 4. announce the bars late trades changed, from storage; then the consumer commits the offsets.
 *
 * Updates are published before the write, so a crash between the two means the batch comes again
 * and, because the state was rebuilt from the database, produces the same updates again (at least
 * once, keyed by bar time, so a repeat is harmless) rather than never.
 */
export class Pipeline {
  #live: LiveCandles;
  readonly #o: PipelineOptions;
  readonly #log: Logger;
  /** Batches and clock ticks touch the live state and publish in turn, never interleaved. */
  #turn: Promise<unknown> = Promise.resolve();
  /** Consumer lag per partition after its latest batch; clock closing waits until all are 0. */
  readonly #lag = new Map<number, number>();
  readonly #m;
  /**
   * Dependency calls run until they succeed; a data error, or records the broker refused, are
   * not retried (packages/runtime DependencyRetrier).
   */
  readonly #retrier: DependencyRetrier;

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'pipeline' });
    this.#live = new LiveCandles({ allowedLatenessMs: options.latenessMs });
    const m = options.metrics;
    this.#m = {
      consumed: m.counter('messages_consumed_total', 'tick-data messages read'),
      stored: m.counter('trades_stored_total', 'trades newly written (re-sent ones not counted)'),
      dead: m.counter('messages_dead_lettered_total', 'messages sent to the DLQ'),
      late: m.counter('trades_late_total', 'trades too late for the live candles (still stored)'),
      duplicate: m.counter('trades_duplicate_total', 'trades already counted in a live candle'),
      updates: m.counter('bar_updates_published_total', 'bar-updates messages published'),
      retries: m.counter('retries_total', 'failed attempts that were retried', {
        labels: ['check'],
      }),
      batchSeconds: m.histogram('batch_duration_seconds', 'time to handle one batch'),
      lag: m.gauge('consumer_lag_messages', 'messages behind the end of tick-data', undefined, {
        labels: ['partition'],
      }),
      unpublishable: m.counter(
        'messages_unpublishable_total',
        'messages the broker refused for good (logged, then skipped so the partition goes on)',
        { labels: ['topic'] },
      ),
    };
    this.#retrier = new DependencyRetrier({
      logger: this.#log,
      // Not the pipeline's clock: it measures real waiting (see PipelineOptions).
      waitClock: options.waitClock ?? systemClock,
      ...(options.stalledAfterMs === undefined ? {} : { stalledAfterMs: options.stalledAfterMs }),
      isRetriable: (err) => !isDataError(err) && !isRefusedByBroker(err),
      isDataError,
      onRetry: (check) => this.#m.retries.inc(1, { check }),
      onHealth: (check, problem) => this.#o.onHealth?.(check, problem),
    });
    const { consumerLag } = options;
    if (consumerLag) {
      // At scrape time from the broker, not from the last batch: right while the consumer is stuck.
      m.onScrape(async () => {
        for (const [partition, lag] of await consumerLag()) {
          this.#m.lag.set(lag, { partition: String(partition) });
        }
      });
    }
  }

  /** Rebuilds the live candles from storage: the forming bars of every stored symbol. */
  restore(signal: AbortSignal): Promise<number> {
    // In turn: a batch handler left over from a crashed consumer finishes (or gives up) first.
    return this.#inTurn(() => this.#restore(signal));
  }

  async #restore(signal: AbortSignal): Promise<number> {
    const started = Date.now();
    const live = new LiveCandles({ allowedLatenessMs: this.#o.latenessMs });
    const { repository } = this.#o;
    // Every symbol, however old its newest trade: replayed or imported history has forming bars
    // too, and a restore that skipped it rebuilt them from the redelivered trades alone.
    const latest = await repository.latestTradeTimes();
    const announced: BarUpdate[] = [];
    for (const [symbol, lastTs] of latest) {
      announced.push(...(await this.#restoreSymbol(live, symbol, lastTs)));
    }
    this.#live = live;
    this.#lag.clear();
    await this.#publishUpdates(announced, undefined, signal);
    await this.#cacheUpdates(announced);
    this.#log.info('live candles restored', {
      symbols: latest.size,
      updates: announced.length,
      durationMs: Date.now() - started,
    });
    return latest.size;
  }

  /** One symbol's live state from storage: stored 1m bars of the open buckets, trades of the open minutes. */
  async #restoreSymbol(
    live: LiveCandles,
    symbol: MarketSymbol,
    lastTs: EpochMs,
  ): Promise<BarUpdate[]> {
    // Not before what this state already closed (the clock closes a quiet live symbol's minutes
    // early): those minutes are stored, and replaying their trades into a closed minute would
    // drop them as late, leaving the rebuilt forming bars without them.
    const openFrom = Math.max(
      floorBucket(lastTs - this.#o.latenessMs, '1m'),
      live.closedBefore(symbol),
    );
    const [closedMinutes, trades] = await Promise.all([
      this.#o.repository.readBars(symbol, '1m', floorBucket(openFrom, '1w'), openFrom),
      this.#o.repository.readTrades(symbol, openFrom),
    ]);
    return live.restore(symbol, { closedMinutes, trades, openFrom });
  }

  /**
   * Late trades are stored, and the bars they changed are announced again: closed buckets as
   * final bars read back from storage (listeners and caches replace what they had), and the
   * symbol's forming bars rebuilt from storage, since their closed minutes changed under them.
   */
  async #corrections(late: readonly Tick[]): Promise<BarUpdate[]> {
    const out: BarUpdate[] = [];
    const { repository } = this.#o;
    for (const symbol of new Set(late.map((t) => t.symbol))) {
      const minutes = new Set(
        late.filter((t) => t.symbol === symbol).map((t) => floorBucket(t.ts, '1m')),
      );
      // Buckets that ended before the event-time close line are closed; anything later is still
      // forming and is re-announced by the rebuild below, never as final.
      const closeLine = floorBucket(this.#live.watermark(symbol) - this.#o.latenessMs, '1m');
      for (const interval of INTERVALS) {
        const buckets = new Set([...minutes].map((m) => floorBucket(m, interval)));
        for (const bucket of buckets) {
          if (!(bucket + INTERVAL_MS[interval] <= closeLine)) continue;
          const [bar] = await repository.readBars(
            symbol,
            interval,
            bucket,
            bucket + INTERVAL_MS[interval],
          );
          if (bar) out.push({ v: 1, symbol, interval, bar, final: true });
        }
      }
      out.push(...(await this.#restoreSymbol(this.#live, symbol, this.#live.watermark(symbol))));
    }
    return out;
  }

  /**
   * One partition's batch in three steps. The live step (decode, live candles, bar updates and
   * the live cache) and the after-write step (corrections of late trades, which read storage and
   * rebuild live state) run in turn with other batches and clock ticks; the write between them
   * does not, so another partition's batch goes live while this one is written. A partition's
   * next batch waits for this one (kafkajs), and its symbols are this partition's alone.
   */
  async handleBatch(batch: ConsumedBatch, context: BatchContext): Promise<void> {
    const started = Date.now();
    const staged = await this.#inTurn(() => this.#goLive(batch, context));
    const stored = await this.#store(
      staged.trades,
      staged.sources,
      context.signal,
      context.heartbeat,
    );
    await this.#inTurn(() => this.#afterWrite(batch, staged, stored, context, started));
  }

  /** Closes the bars of quiet live symbols on the clock; skipped while the consumer lags. */
  tick(signal: AbortSignal): Promise<void> {
    return this.#inTurn(async () => {
      if (![...this.#lag.values()].every((lag) => lag === 0) || this.#lag.size === 0) return;
      const now = this.#o.clock.now();
      const events: BarUpdate[] = [];
      for (const symbol of this.#live.symbols()) {
        if (now - this.#live.watermark(symbol) > LIVE_WINDOW_MS) continue;
        events.push(...this.#live.advance(symbol, now));
      }
      if (events.length === 0) return;
      await this.#publishUpdates(events, undefined, signal);
      await this.#cacheUpdates(events);
    });
  }

  symbols(): MarketSymbol[] {
    return this.#live.symbols();
  }

  /** The forming bar of `symbol` at `interval`, as the live state has it now. */
  forming(symbol: MarketSymbol, interval: Interval): Bar | undefined {
    return this.#live.forming(symbol, interval);
  }

  #inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(work, work);
    this.#turn = run.catch(() => undefined);
    return run;
  }

  async #goLive(batch: ConsumedBatch, { heartbeat, signal }: BatchContext): Promise<Staged> {
    // A batch of a consumer that has since stopped must not touch the state restored after it.
    if (signal.aborted) throw new AppError('CANCELLED', 'consumer stopped before the batch ran');
    const trades: Tick[] = [];
    const sources: ConsumedMessage[] = [];
    const dead: OutgoingMessage[] = [];
    let publishedAt = 0;
    for (const message of batch.messages) {
      publishedAt = Math.max(publishedAt, message.timestamp);
      const decoded = decodeTick(message.value ?? new Uint8Array());
      if (decoded.ok) {
        trades.push(decoded.value);
        sources.push(message);
      } else dead.push(this.#deadLetter(message, decoded.reason));
    }
    this.#m.consumed.inc(batch.messages.length);

    const { statuses, events } = this.#live.addAll(trades);
    const lateTrades: Tick[] = [];
    let duplicate = 0;
    for (const [i, status] of statuses.entries()) {
      if (status === 'late') lateTrades.push(trades[i]!);
      else if (status === 'duplicate') duplicate++;
    }
    this.#m.late.inc(lateTrades.length);
    this.#m.duplicate.inc(duplicate);

    await this.#publish(this.#o.topics.dlq, dead, signal, heartbeat);
    this.#m.dead.inc(dead.length);
    await this.#publishUpdates(events, publishedAt, signal, heartbeat);
    // In turn, like the updates: a clock tick's finals after this are never overwritten by it.
    await this.#cacheUpdates(events);
    return { trades, sources, lateTrades, publishedAt, dead: dead.length, updates: events.length };
  }

  async #afterWrite(
    batch: ConsumedBatch,
    staged: Staged,
    stored: { inserted: number; changed: Set<string>; refused: Tick[] },
    { heartbeat, signal }: BatchContext,
    started: EpochMs,
  ): Promise<void> {
    if (signal.aborted)
      throw new AppError('CANCELLED', 'consumer stopped while the batch was written');
    // Only late trades that are new to storage changed a closed bar; a redelivered one did not.
    // A trade storage refused despite decoding (a check decode does not know yet) was counted by
    // the live candles: its bars are announced again from storage, which never had it.
    const changing = [
      ...staged.lateTrades.filter((t) =>
        stored.changed.has(`${t.symbol} ${floorBucket(t.ts, '1m')}`),
      ),
      ...stored.refused,
    ];
    let updates = staged.updates;
    if (changing.length > 0) {
      // After the write, so storage has them. A crash between the two loses these corrections
      // (storage, which the API reads, is right regardless); the window is one round trip.
      const corrections = await this.#retrier.run('database', signal, heartbeat, () =>
        this.#corrections(changing),
      );
      await this.#publishUpdates(corrections, staged.publishedAt, signal, heartbeat);
      await this.#cacheUpdates(corrections);
      updates += corrections.length;
    }

    const last = batch.messages[batch.messages.length - 1];
    if (last && batch.highWatermark !== undefined) {
      const lag = Number(BigInt(batch.highWatermark) - BigInt(last.offset) - 1n);
      this.#lag.set(batch.partition, lag);
      this.#m.lag.set(lag, { partition: String(batch.partition) });
    }
    const durationMs = Date.now() - started;
    this.#m.batchSeconds.observe(durationMs / 1_000);
    this.#log.debug('batch handled', {
      partition: batch.partition,
      messages: batch.messages.length,
      stored: stored.inserted,
      dead: staged.dead,
      late: staged.lateTrades.length,
      updates,
      durationMs,
    });
  }

  /** Writes the trades; a row the database refuses goes to the DLQ instead of stalling the batch. */
  async #store(
    trades: Tick[],
    sources: readonly ConsumedMessage[],
    signal: AbortSignal,
    heartbeat?: () => Promise<void>,
  ): Promise<{ inserted: number; changed: Set<string>; refused: Tick[] }> {
    const changed = new Set<string>();
    const refused: Tick[] = [];
    const note = (result: InsertTradesResult): number => {
      for (const m of result.touched) if (m.trades > 0) changed.add(`${m.symbol} ${m.bucket}`);
      return result.inserted;
    };
    try {
      const inserted = note(
        await this.#retrier.run('database', signal, heartbeat, () =>
          this.#o.repository.insertTrades(trades),
        ),
      );
      this.#m.stored.inc(inserted);
      return { inserted, changed, refused };
    } catch (err) {
      if (!isDataError(err)) throw err;
      // One bad row fails the whole statement: find it by writing one trade at a time.
      let inserted = 0;
      for (const [i, trade] of trades.entries()) {
        try {
          inserted += note(
            await this.#retrier.run('database', signal, heartbeat, () =>
              this.#o.repository.insertTrades([trade]),
            ),
          );
        } catch (rowErr) {
          if (!isDataError(rowErr)) throw rowErr;
          const reason = `refused by the database: ${(rowErr as Error).message}`;
          await this.#publish(
            this.#o.topics.dlq,
            [this.#deadLetter(sources[i]!, reason)],
            signal,
            heartbeat,
          );
          this.#m.dead.inc();
          refused.push(trade);
        }
      }
      this.#m.stored.inc(inserted);
      return { inserted, changed, refused };
    }
  }

  async #publishUpdates(
    events: readonly BarUpdate[],
    publishedAt: EpochMs | undefined,
    signal: AbortSignal,
    heartbeat?: () => Promise<void>,
  ): Promise<void> {
    const updates = coalesceUpdates(events);
    if (updates.length === 0) return;
    const headers = publishedAt ? { [PUBLISHED_AT_HEADER]: String(publishedAt) } : undefined;
    const messages: OutgoingMessage[] = updates.map((u) => ({
      key: u.symbol,
      value: JSON.stringify(u),
      ...(headers ? { headers } : {}),
    }));
    await this.#publish(this.#o.topics.barUpdates, messages, signal, heartbeat);
    this.#m.updates.inc(messages.length);
  }

  /**
   * Publishes `messages` in order, in requests that fit the broker's limits, each retried on its
   * own (a failure repeats one request, not all before it). Records the broker refuses for good
   * (too large for a broker configured below our limit, invalid) are split down to the one at
   * fault, which is logged, counted and skipped: retrying cannot help, and stalling the partition
   * for it would stop every trade behind it.
   */
  async #publish(
    topic: string,
    messages: readonly OutgoingMessage[],
    signal: AbortSignal,
    heartbeat?: () => Promise<void>,
  ): Promise<void> {
    const { publisher } = this.#o;
    const send = async (run: readonly OutgoingMessage[]): Promise<void> => {
      try {
        await this.#retrier.run('kafka', signal, heartbeat, () => publisher.send(topic, run));
      } catch (err) {
        if (!isRefusedByBroker(err)) throw err;
        if (run.length > 1) {
          const half = Math.ceil(run.length / 2);
          await send(run.slice(0, half));
          await send(run.slice(half));
          return;
        }
        this.#m.unpublishable.inc(1, { topic });
        this.#log.error('message refused by the broker; skipped', {
          topic,
          key: run[0]?.key,
          err: (err as Error).message,
        });
      }
    };
    for (const run of splitForProduce(messages, publisher.maxRequestBytes)) await send(run);
  }

  /** The cache is never worth stalling for: bar-updates carries the same state. */
  async #cacheUpdates(events: readonly BarUpdate[]): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.#o.liveStore.put(events);
      this.#o.onHealth?.('cache', undefined);
    } catch (err) {
      this.#o.onHealth?.('cache', (err as Error).message);
      this.#log.warn('live cache write failed; continuing without it', {
        err: (err as Error).message,
      });
    }
  }

  /** The original key, bytes and headers plus the DLQ's; a value too large to publish is cut. */
  #deadLetter(message: ConsumedMessage, reason: string): OutgoingMessage {
    return fitDeadLetter(
      {
        key: message.key?.toString() ?? null,
        value: message.value ?? Buffer.alloc(0),
        headers: message.headers,
      },
      {
        [DLQ_HEADERS.reason]: reason,
        [DLQ_HEADERS.topic]: message.topic,
        [DLQ_HEADERS.partition]: String(message.partition),
        [DLQ_HEADERS.offset]: message.offset,
        [DLQ_HEADERS.failedAt]: new Date(this.#o.clock.now()).toISOString(),
      },
      this.#o.publisher.maxRequestBytes,
    );
  }
}
