import { describe, expect, it } from 'vitest';
import {
  decodeRecords,
  encodeBatch,
  parseProducedBatches,
  type StoredBatch,
} from '../records/record-batch.js';
import { PartitionLog, type RetentionPolicy } from './partition-log.js';

const NOW_MS = 1_700_000_000_000;
const KEEP_ALL: RetentionPolicy = {
  retentionMs: -1,
  retentionBytes: -1,
  segmentBytes: 1 << 30,
  segmentMs: 1 << 30,
};

function batchOf(values: string[], timestamp = NOW_MS): StoredBatch[] {
  const parsed = parseProducedBatches(
    encodeBatch(values.map((v, i) => ({ value: Buffer.from(v), timestamp: timestamp + i }))),
  );
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.batches;
}

describe('PartitionLog (in memory)', () => {
  it('assigns consecutive offsets batch after batch and rewrites baseOffset', () => {
    const log = PartitionLog.open(null, KEEP_ALL, NOW_MS);
    expect(log.append(batchOf(['a', 'b', 'c']), NOW_MS, false)).toBe(0);
    expect(log.append(batchOf(['d']), NOW_MS, false)).toBe(3);
    expect(log.logEndOffset).toBe(4);
    const read = log.read(3, 1 << 20);
    expect(read.batches).toHaveLength(1);
    expect(
      decodeRecords(read.batches[0] as Buffer).map((r) => [r.offset, r.value?.toString()]),
    ).toEqual([[3, 'd']]);
  });

  it('returns whole batches from the one holding the offset, at least one even past maxBytes', () => {
    const log = PartitionLog.open(null, KEEP_ALL, NOW_MS);
    log.append(batchOf(['a', 'b']), NOW_MS, false);
    log.append(batchOf(['c', 'd']), NOW_MS, false);
    expect(log.read(1, 1).batches).toHaveLength(1);
    expect(decodeRecords(log.read(1, 1).batches[0] as Buffer)[0]?.offset).toBe(0);
    expect(log.read(0, 1 << 20).batches).toHaveLength(2);
    expect(log.read(2, 1 << 20).batches).toHaveLength(1);
  });

  it('finds the first offset at or after a timestamp inside a batch', () => {
    const log = PartitionLog.open(null, KEEP_ALL, NOW_MS);
    log.append(batchOf(['a', 'b', 'c'], 1000), NOW_MS, false);
    log.append(batchOf(['d', 'e'], 5000), NOW_MS, false);
    expect(log.offsetForTimestamp(1001)).toEqual({ offset: 1, timestamp: 1001 });
    expect(log.offsetForTimestamp(1003)).toEqual({ offset: 3, timestamp: 5000 });
    expect(log.offsetForTimestamp(9999)).toBeNull();
  });

  it('stamps LogAppendTime batches with the append time and a fresh CRC', () => {
    const log = PartitionLog.open(null, KEEP_ALL, NOW_MS);
    log.append(batchOf(['a'], 42), NOW_MS + 5, true);
    const [batch] = log.read(0, 1 << 20).batches;
    expect(decodeRecords(batch as Buffer)[0]?.timestamp).toBe(NOW_MS + 5);
    // The stored bytes still pass produce-side validation, CRC included.
    expect(parseProducedBatches(batch as Buffer).ok).toBe(true);
  });

  it('retention by size deletes whole old segments and advances the log start offset', () => {
    const policy: RetentionPolicy = {
      retentionMs: -1,
      retentionBytes: 500,
      segmentBytes: 200,
      segmentMs: 1 << 30,
    };
    const log = PartitionLog.open(null, policy, NOW_MS);
    for (let i = 0; i < 20; i++) log.append(batchOf(['x'.repeat(100)]), NOW_MS, false);
    expect(log.logEndOffset).toBe(20);
    expect(log.logStartOffset).toBeGreaterThan(0);
    expect(log.sizeBytes).toBeLessThanOrEqual(500 + 200);
    expect(log.read(log.logStartOffset, 1 << 20).batches.length).toBe(20 - log.logStartOffset);
  });

  it('retention by age keeps the active segment and deletes older ones', () => {
    const policy: RetentionPolicy = {
      retentionMs: 60_000,
      retentionBytes: -1,
      segmentBytes: 1 << 30,
      segmentMs: 10_000,
    };
    const log = PartitionLog.open(null, policy, NOW_MS);
    log.append(batchOf(['old']), NOW_MS, false);
    log.append(batchOf(['newer']), NOW_MS + 20_000, false);
    log.enforceRetention(NOW_MS + 70_000);
    expect(log.logStartOffset).toBe(1);
    log.enforceRetention(NOW_MS + 1_000_000);
    // Everything aged out, yet offsets continue where they were.
    expect(log.logStartOffset).toBe(2);
    expect(log.append(batchOf(['next']), NOW_MS + 1_000_000, false)).toBe(2);
  });
});
