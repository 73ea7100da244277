/**
 * The replay order (docs/REPLAY.md): by time, then trade id in code-unit order (the core's
 * `compareTrades`, `COLLATE "C"` in SQL), then symbol, because ids are unique per symbol only and
 * two symbols' trades can share a millisecond and an id.
 */
import type { Tick } from '@candlestream/core';
import { AppError, compareTrades } from '@candlestream/core';

export type ReplayKey = Pick<Tick, 'ts' | 'id' | 'symbol'>;

export function compareReplay(a: ReplayKey, b: ReplayKey): number {
  const byTrade = compareTrades(a, b);
  if (byTrade !== 0) return byTrade;
  return a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0;
}

/** A binary min-heap: the reorder window of a file and the pending expanded minutes. */
export class MinHeap<T> {
  readonly #items: T[] = [];
  readonly #compare: (a: T, b: T) => number;

  constructor(compare: (a: T, b: T) => number) {
    this.#compare = compare;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const items = this.#items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#compare(items[i]!, items[parent]!) >= 0) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < items.length && this.#compare(items[left]!, items[smallest]!) < 0) smallest = left;
      if (right < items.length && this.#compare(items[right]!, items[smallest]!) < 0) {
        smallest = right;
      }
      if (smallest === i) break;
      [items[i], items[smallest]] = [items[smallest]!, items[i]!];
      i = smallest;
    }
    return top;
  }
}

/** Refuses a page or window size that is not a positive integer (it would never make progress). */
export function positiveCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new AppError('INVALID_ARGUMENT', `${name} must be a positive integer, got ${value}`, {
      retriable: false,
    });
  }
  return value;
}
