import { AppError } from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import { fitDeadLetter } from './dead-letters.js';
import type { OutgoingMessage } from './producer.js';
import {
  cachingPartitioner,
  isRefusedByBroker,
  MAX_PRODUCE_REQUEST_BYTES,
  recordBytes,
  singleRecordBatchBytes,
  splitForProduce,
} from './producer.js';
import { DLQ_HEADERS } from './topics.js';
import { defaultPartitioner } from './client.js';

const BATCH_OVERHEAD = 61;

function message(valueBytes: number, key = 'BTC-USD'): OutgoingMessage {
  return { key, value: Buffer.alloc(valueBytes, 0x61), headers: { h: 'v' } };
}

const batchBytes = (run: readonly OutgoingMessage[]): number =>
  BATCH_OVERHEAD + run.reduce((n, m) => n + recordBytes(m), 0);

describe('splitForProduce', () => {
  it('regression: 10,000 dead letters of one key fit the broker limit in order instead of one 2.8 MB request', () => {
    const letters = Array.from({ length: 10_000 }, (_, i) => ({
      key: 'same-key',
      value: `{"v":2,"n":${i},"pad":"${'x'.repeat(100)}"}`,
      headers: { [DLQ_HEADERS.reason]: 'unsupported version 2', [DLQ_HEADERS.offset]: String(i) },
    }));
    const runs = splitForProduce(letters);
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.flat()).toEqual(letters);
    for (const run of runs) expect(batchBytes(run)).toBeLessThanOrEqual(MAX_PRODUCE_REQUEST_BYTES);
    // Greedy: each run but the last is full enough that its successor's first message did not fit.
    for (let i = 0; i + 1 < runs.length; i++) {
      expect(batchBytes([...runs[i]!, runs[i + 1]![0]!])).toBeGreaterThan(
        MAX_PRODUCE_REQUEST_BYTES,
      );
    }
  });

  it('keeps a message too large on its own in a run of its own, between its neighbours', () => {
    const small = message(10);
    const huge = message(2_000);
    const runs = splitForProduce([small, huge, small], 1_000);
    expect(runs).toEqual([[small], [huge], [small]]);
  });

  it('cuts runs at maxMessages too, in order', () => {
    const messages = Array.from({ length: 7 }, (_, i) => message(i + 1));
    const runs = splitForProduce(messages, MAX_PRODUCE_REQUEST_BYTES, 3);
    expect(runs.map((r) => r.length)).toEqual([3, 3, 1]);
    expect(runs.flat()).toEqual(messages);
  });

  it('sends nothing for nothing, and one run for what fits', () => {
    expect(splitForProduce([])).toEqual([]);
    expect(splitForProduce([message(1), message(2)])).toHaveLength(1);
  });

  it('counts bytes, not characters, and every header', () => {
    const ascii = recordBytes({ key: 'k', value: 'aa' });
    expect(recordBytes({ key: 'k', value: 'éé' })).toBe(ascii + 2);
    expect(recordBytes({ key: 'k', value: 'aa', headers: { ab: 'cd' } })).toBeGreaterThan(
      ascii + 4,
    );
  });
});

describe('fitDeadLetter', () => {
  const dlq = { [DLQ_HEADERS.reason]: 'not JSON', [DLQ_HEADERS.offset]: '7' };

  it('keeps the original bytes whole when they fit', () => {
    const letter = fitDeadLetter(message(1_000), dlq);
    expect(letter.value).toEqual(message(1_000).value);
    expect(letter.headers).toEqual({ h: 'v', ...dlq });
  });

  it('regression: a value of 1,048,400 bytes is cut to fit the limit, saying why and how large it was', () => {
    const original = message(1_048_400);
    const letter = fitDeadLetter(original, dlq);
    expect(singleRecordBatchBytes(letter)).toBeLessThanOrEqual(MAX_PRODUCE_REQUEST_BYTES);
    // Cut only as far as needed: what is left is the original's first bytes.
    expect(singleRecordBatchBytes(letter)).toBeGreaterThan(MAX_PRODUCE_REQUEST_BYTES - 100);
    const value = letter.value as Buffer;
    expect(value.equals((original.value as Buffer).subarray(0, value.length))).toBe(true);
    expect(letter.headers).toMatchObject({
      ...dlq,
      h: 'v',
      [DLQ_HEADERS.originalBytes]: '1048400',
      [DLQ_HEADERS.truncated]: expect.stringContaining(`of 1048400 bytes`) as unknown,
    });
  });

  it('drops the copied headers when even they do not leave room', () => {
    const bulky: OutgoingMessage = { key: 'k', value: 'v', headers: { big: 'x'.repeat(2_000) } };
    const letter = fitDeadLetter(bulky, dlq, 1_000);
    expect(singleRecordBatchBytes(letter)).toBeLessThanOrEqual(1_000);
    expect(letter.headers).not.toHaveProperty('big');
    expect(letter.headers).toMatchObject({ ...dlq, [DLQ_HEADERS.originalBytes]: '1' });
  });
});

describe('isRefusedByBroker', () => {
  it('is true only for the publisher’s refusal, not for a broker that is away', () => {
    const refused = new AppError('INVALID_ARGUMENT', 'too large', {
      retriable: false,
      details: { kafkaRefused: 'MESSAGE_TOO_LARGE' },
    });
    expect(isRefusedByBroker(refused)).toBe(true);
    expect(isRefusedByBroker(new AppError('UNAVAILABLE', 'connection refused'))).toBe(false);
    expect(isRefusedByBroker(new Error('ECONNREFUSED'))).toBe(false);
  });
});

describe('cachingPartitioner', () => {
  it("puts every keyed message where kafkajs's default partitioner does, for any partition count", () => {
    const caching = cachingPartitioner();
    const reference = defaultPartitioner();
    for (const partitions of [1, 3, 6, 7]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({
        partitionId: i,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [0],
        isr: [0],
      }));
      const seen = new Set<number>();
      for (let i = 0; i < 300; i++) {
        const key = `SYM${i % 97}-USD`;
        const args = { topic: 'tick-data', partitionMetadata, message: { key, value: 'x' } };
        const chosen = caching(args);
        expect(chosen, `${key} of ${partitions}`).toBe(reference(args));
        seen.add(chosen);
        // The second time comes from the cache: still the same.
        expect(caching(args)).toBe(chosen);
      }
      expect(seen.size).toBe(partitions);
    }
  });

  it('leaves unkeyed messages and explicit partitions to the default partitioner', () => {
    const caching = cachingPartitioner();
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({
      partitionId,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    }));
    const args = { topic: 't', partitionMetadata, message: { key: 'k', value: 'x', partition: 2 } };
    expect(caching(args)).toBe(2);
    const spread = new Set(
      Array.from({ length: 30 }, () =>
        caching({ topic: 't', partitionMetadata, message: { key: null, value: 'x' } }),
      ),
    );
    expect(spread.size).toBeGreaterThan(1);
  });
});
