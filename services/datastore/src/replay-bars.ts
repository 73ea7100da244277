/**
 * The bars of the chart's replay sessions (docs/REPLAY.md): while a /stream client watches a
 * session, its topic is read from the start and its trades built into candles of every interval
 * (the same LiveCandles as the live pipeline, with no lateness: a replay's trades come in order),
 * so what the page draws is what the replayed trades make.
 */
import { randomUUID } from 'node:crypto';
import type { Bar, BarUpdate, Clock, Interval, MarketSymbol } from '@candlestream/core';
import {
  coalesceUpdates,
  decodeTick,
  ENDED_REPLAY_STATES,
  errorMessage,
  LiveCandles,
  replayTopicName,
} from '@candlestream/core';
import type { KafkaClient } from '@candlestream/kafka';
import { BatchConsumer } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { ReplayDesk, ReplayView } from './replays.js';
import type { ReplayFeed } from './stream/feed.js';
import { seriesKey } from './stream/protocol.js';

/** Closed bars kept per series of a session; a subscriber gets at most this many at once. */
export const MAX_REPLAY_BARS = 2_000;
/**
 * A session nobody watches keeps its reader this long (an interval switch unsubscribes, then
 * subscribes again at once), then the reader and the bars go.
 */
export const UNWATCHED_GRACE_MS = 30_000;
/** A crashed reader (the broker away) starts again after this, from the topic's start. */
export const READER_RESTART_MS = 1_000;
/** A replayed trade that cannot be read: logged this many times per session, then counted. */
const MAX_LOGGED_REFUSALS = 10;

interface Series {
  closed: Bar[];
  forming: Bar | undefined;
}

/** One read of a session's topic from its start, and the candles it built. */
interface Reader {
  consumer: BatchConsumer;
  candles: LiveCandles;
  series: Map<string, Series>;
  refused: number;
  restartTimer: ReturnType<Clock['setTimeout']> | undefined;
}

interface Watched {
  watchers: number;
  reader: Reader;
  release: () => void;
  idleTimer: ReturnType<Clock['setTimeout']> | undefined;
}

export interface ReplayBarsOptions {
  kafka: KafkaClient;
  desk: ReplayDesk;
  clock: Clock;
  logger: Logger;
}

export class ReplayBars implements ReplayFeed {
  readonly #options: ReplayBarsOptions;
  readonly #log: Logger;
  readonly #watched = new Map<string, Watched>();
  readonly #listeners = new Set<(session: string, update: BarUpdate) => void>();

  constructor(options: ReplayBarsOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'replay-bars' });
  }

  refusal(session: string, symbol: MarketSymbol): string | undefined {
    const status = this.#options.desk.view(session);
    if (!status) return `unknown replay session ${session}; POST /replays creates one`;
    if (!status.symbols.includes(symbol))
      return `replay session ${session} replays ${status.symbols.join(', ')}, not ${symbol}`;
    return undefined;
  }

  status(session: string): ReplayView | undefined {
    return this.#options.desk.view(session);
  }

  onStatus(listener: (status: ReplayView) => void): () => void {
    return this.#options.desk.onChange(listener);
  }

  onUpdate(listener: (session: string, update: BarUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  bars(session: string, symbol: MarketSymbol, interval: Interval): BarUpdate[] {
    const series = this.#watched.get(session)?.reader.series.get(seriesKey(symbol, interval));
    if (!series) return [];
    const updates: BarUpdate[] = series.closed.map((bar) => ({
      v: 1,
      symbol,
      interval,
      bar,
      final: true,
    }));
    if (series.forming) updates.push({ v: 1, symbol, interval, bar: series.forming, final: false });
    return updates;
  }

  watch(session: string): () => void {
    const watched = this.#watched.get(session) ?? this.#start(session);
    watched.watchers++;
    if (watched.idleTimer) {
      this.#options.clock.clearTimeout(watched.idleTimer);
      watched.idleTimer = undefined;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      watched.watchers--;
      if (watched.watchers > 0) return;
      watched.idleTimer = this.#options.clock.setTimeout(
        () => void this.#stop(session, watched),
        UNWATCHED_GRACE_MS,
      );
    };
  }

  /** Stops every reader (the datastore is stopping). */
  async close(): Promise<void> {
    const all = [...this.#watched.entries()];
    await Promise.all(all.map(([session, watched]) => this.#stop(session, watched)));
  }

  get sessions(): number {
    return this.#watched.size;
  }

  #start(session: string): Watched {
    const watched: Watched = {
      watchers: 0,
      reader: undefined as unknown as Reader,
      release: this.#options.desk.watch(session),
      idleTimer: undefined,
    };
    this.#watched.set(session, watched);
    watched.reader = this.#read(session, watched);
    return watched;
  }

  #read(session: string, watched: Watched): Reader {
    const topic = replayTopicName(session);
    const consumer = new BatchConsumer(this.#options.kafka, {
      groupId: `datastore-replay-${randomUUID()}`,
      topics: [topic],
      fromBeginning: true,
      // A step's trades should be on the chart as soon as they are published.
      maxWaitTimeMs: 20,
      onCrash: (err) => this.#crashed(session, watched, reader, err),
    });
    const reader: Reader = {
      consumer,
      candles: new LiveCandles({ allowedLatenessMs: 0 }),
      series: new Map(),
      refused: 0,
      restartTimer: undefined,
    };
    consumer
      .start((batch) => {
        if (watched.reader !== reader || this.#watched.get(session) !== watched)
          return Promise.resolve();
        const events: BarUpdate[] = [];
        for (const message of batch.messages) {
          const decoded = decodeTick(message.value ?? '');
          if (!decoded.ok) {
            if (reader.refused++ < MAX_LOGGED_REFUSALS)
              this.#log.warn('replayed trade refused', { session, reason: decoded.reason });
            continue;
          }
          events.push(...reader.candles.add(decoded.value).events);
        }
        for (const update of coalesceUpdates(events)) {
          this.#record(reader, update);
          for (const listener of this.#listeners) listener(session, update);
        }
        return Promise.resolve();
      })
      .catch((err: unknown) => this.#crashed(session, watched, reader, err));
    this.#log.info('replay reader started', { session, topic });
    return reader;
  }

  /**
   * A reader that crashed (the broker away longer than its retries) is replaced by a new one
   * reading from the topic's start with fresh candles, so nothing counts twice; subscribers are
   * sent only what is newer than what they have (the ordering rule), so the chart carries on.
   */
  #crashed(session: string, watched: Watched, reader: Reader, err: unknown): void {
    if (watched.reader !== reader || reader.restartTimer) return;
    this.#log.warn('replay reader crashed', { session, error: errorMessage(err) });
    reader.restartTimer = this.#options.clock.setTimeout(() => {
      if (this.#watched.get(session) !== watched || watched.reader !== reader) return;
      reader.consumer
        .stop()
        .catch((e: unknown) =>
          this.#log.warn('replay reader stop failed', { session, error: errorMessage(e) }),
        );
      watched.reader = this.#read(session, watched);
    }, READER_RESTART_MS);
  }

  #record(reader: Reader, update: BarUpdate): void {
    const key = seriesKey(update.symbol, update.interval);
    let series = reader.series.get(key);
    if (!series) reader.series.set(key, (series = { closed: [], forming: undefined }));
    if (!update.final) {
      series.forming = update.bar;
      return;
    }
    series.closed.push(update.bar);
    if (series.closed.length > MAX_REPLAY_BARS) series.closed.shift();
    if (series.forming?.time === update.bar.time) series.forming = undefined;
  }

  async #stop(session: string, watched: Watched): Promise<void> {
    if (this.#watched.get(session) !== watched) return;
    this.#watched.delete(session);
    if (watched.idleTimer) this.#options.clock.clearTimeout(watched.idleTimer);
    this.#options.clock.clearTimeout(watched.reader.restartTimer);
    watched.release();
    try {
      await watched.reader.consumer.stop();
    } catch (err) {
      this.#log.warn('replay reader stop failed', { session, error: errorMessage(err) });
    }
    const ended = ENDED_REPLAY_STATES.includes(this.#options.desk.view(session)?.state ?? 'ended');
    this.#log.info('replay reader stopped', { session, ended });
  }
}
