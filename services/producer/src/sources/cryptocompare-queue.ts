import type { Tick } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';

/** Below this many consumed slots the array is not worth compacting. */
const COMPACT_AFTER_ITEMS = 1_024;

/**
 * The trades between the socket reader and a slower consumer.
 *
 * Backpressure policy: the socket cannot be paused without the server buffering for us and the
 * heartbeat watchdog firing, so the queue is bounded instead. Past `capacity` live trades it
 * drops the oldest live trade (counted, one warning per episode): for a live chart the newest
 * trades matter most, and a later backfill can restore what was dropped. Backfill trades do not
 * count against the bound and are never dropped: a gap fill is bounded by its time range, and
 * dropping its trades would re-open the gap it was fetched to close.
 */
export class TradeQueue {
  readonly #capacity: number;
  readonly #logger: Logger;
  readonly #onDrop: (count: number) => void;
  #items: { tick: Tick; live: boolean }[] = [];
  #head = 0;
  #live = 0;
  /** Trades dropped in the current overflow episode; 0 when not overflowing. */
  #droppedInEpisode = 0;

  constructor(capacity: number, logger: Logger, onDrop: (count: number) => void) {
    if (!(capacity >= 1)) throw new RangeError('queue capacity must be >= 1');
    this.#capacity = capacity;
    this.#logger = logger;
    this.#onDrop = onDrop;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(tick: Tick, kind: 'live' | 'backfill'): void {
    const live = kind === 'live';
    this.#items.push({ tick, live });
    if (!live) return;
    this.#live++;
    if (this.#live <= this.#capacity) return;
    this.#dropOldestLive();
  }

  shift(): Tick | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head]!;
    this.#head++;
    if (item.live) this.#live--;
    if (this.#head >= COMPACT_AFTER_ITEMS && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.length === 0 && this.#droppedInEpisode > 0) {
      this.#logger.info('consumer caught up', { dropped: this.#droppedInEpisode });
      this.#droppedInEpisode = 0;
    }
    return item.tick;
  }

  #dropOldestLive(): void {
    let i = this.#head;
    while (!this.#items[i]!.live) i++;
    const [dropped] = this.#items.splice(i, 1);
    this.#live--;
    if (this.#droppedInEpisode === 0) {
      this.#logger.warn('consumer is behind; dropping the oldest live trades', {
        capacity: this.#capacity,
        symbol: dropped?.tick.symbol,
      });
    }
    this.#droppedInEpisode++;
    this.#onDrop(1);
  }
}
