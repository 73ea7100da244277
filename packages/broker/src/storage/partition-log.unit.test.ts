import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger, LogFields } from '@candlestream/logger';
import { afterEach, describe, expect, it } from 'vitest';
import { withCodec } from '../records/fixtures.js';
import {
  Compression,
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

  it('finds an offset by timestamp in snappy, lz4 and zstd batches from the header (it threw on them)', () => {
    for (const codec of [Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]) {
      const log = PartitionLog.open(null, KEEP_ALL, NOW_MS);
      const compressed = (values: string[], timestamp: number): StoredBatch[] => {
        const batch = withCodec(
          encodeBatch(values.map((v, i) => ({ value: Buffer.from(v), timestamp: timestamp + i }))),
          codec,
        );
        const parsed = parseProducedBatches(batch);
        if (!parsed.ok) throw new Error(parsed.message);
        return parsed.batches;
      };
      log.append(compressed(['a', 'b', 'c'], 1000), NOW_MS, false);
      log.append(compressed(['d', 'e'], 5000), NOW_MS, false);
      // Inside a batch the broker cannot read: that batch's base offset, never past the answer.
      expect(log.offsetForTimestamp(1001)).toEqual({ offset: 0, timestamp: 1002 });
      // A batch starting at or after the time: exact, from the header.
      expect(log.offsetForTimestamp(1003)).toEqual({ offset: 3, timestamp: 5000 });
      expect(log.offsetForTimestamp(9999)).toBeNull();
    }
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

/** Every value stored in the log, with its offset, decoded from what a fetch would serve. */
function readAll(log: PartitionLog): [number, string | undefined][] {
  return log
    .read(log.logStartOffset, 1 << 30)
    .batches.flatMap((b) =>
      decodeRecords(b).map((r) => [r.offset, r.value?.toString()] as [number, string | undefined]),
    );
}

function values(from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `v${from + i}`);
}

/** A logger that keeps what it was given, for asserting on the recovery line. */
function recordingLogger(): Logger & {
  lines: { level: string; msg: string; fields: LogFields }[];
} {
  const lines: { level: string; msg: string; fields: LogFields }[] = [];
  const make = (base: LogFields): Logger => ({
    error: (msg, fields = {}) =>
      lines.push({ level: 'error', msg, fields: { ...base, ...fields } }),
    warn: (msg, fields = {}) => lines.push({ level: 'warn', msg, fields: { ...base, ...fields } }),
    info: (msg, fields = {}) => lines.push({ level: 'info', msg, fields: { ...base, ...fields } }),
    debug: (msg, fields = {}) =>
      lines.push({ level: 'debug', msg, fields: { ...base, ...fields } }),
    child: (fields) => make({ ...base, ...fields }),
  });
  return Object.assign(make({}), { lines });
}

describe('PartitionLog (segment files)', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'candlestream-log-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('a reopened segment is appended to, not overwritten from its start (records lost on the second restart)', () => {
    const dir = tempDir();
    let log = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
    log.append(batchOf(values(0, 3)), NOW_MS, false);
    log.append(batchOf(values(3, 2)), NOW_MS, false);
    log.close();

    log = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
    expect(log.logEndOffset).toBe(5);
    expect(log.append(batchOf(values(5, 1)), NOW_MS, false)).toBe(5);
    log.close();

    log = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
    expect(log.logEndOffset).toBe(6);
    expect(readAll(log)).toEqual(values(0, 6).map((v, i) => [i, v]));
    expect(log.append(batchOf(values(6, 2)), NOW_MS, false)).toBe(6);
    log.close();

    log = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
    expect(readAll(log)).toEqual(values(0, 8).map((v, i) => [i, v]));
    log.close();
  });

  it('reopening without a clean close (a killed process) keeps every appended batch', () => {
    const dir = tempDir();
    const first = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
    first.append(batchOf(values(0, 2)), NOW_MS, false);
    // No close(): the file descriptors die with the process, the bytes are in the file already.
    const second = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
    second.append(batchOf(values(2, 2)), NOW_MS, false);
    const third = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
    expect(readAll(third)).toEqual(values(0, 4).map((v, i) => [i, v]));
    for (const log of [first, second, third]) log.close();
  });

  it('keeps appending across segment rolls and reopens', () => {
    const dir = tempDir();
    const policy: RetentionPolicy = { ...KEEP_ALL, segmentBytes: 150 };
    let next = 0;
    for (let round = 0; round < 4; round++) {
      const log = PartitionLog.open(dir, policy, NOW_MS);
      for (let i = 0; i < 5; i++) {
        expect(log.append(batchOf(values(next, 1)), NOW_MS, false)).toBe(next);
        next++;
      }
      log.close();
    }
    expect(readdirSync(dir).filter((f) => f.endsWith('.log')).length).toBeGreaterThan(1);
    const log = PartitionLog.open(dir, policy, NOW_MS);
    expect(readAll(log)).toEqual(values(0, next).map((v, i) => [i, v]));
    log.close();
  });

  it.each([
    [
      'a torn last batch (bytes cut off the end)',
      (file: string) => truncateSync(file, statSync(file).size - 7),
    ],
    [
      'garbage after the last batch',
      (file: string) => appendFileSync(file, Buffer.from('not a record batch at all, just noise')),
    ],
  ])(
    'loading a damaged tail (%s) keeps every whole batch, truncates and logs one line',
    (_, damage) => {
      const dir = tempDir();
      let log = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
      log.append(batchOf(values(0, 2)), NOW_MS, false);
      log.append(batchOf(values(2, 3)), NOW_MS, false);
      const intactBytes = log.sizeBytes;
      log.append(batchOf(values(5, 2)), NOW_MS, false);
      log.close();
      const [name] = readdirSync(dir).filter((f) => f.endsWith('.log'));
      const file = join(dir, name as string);
      const wholeBytes = statSync(file).size;
      damage(file);
      const damagedBytes = statSync(file).size;
      const goodBytes = damagedBytes < wholeBytes ? intactBytes : wholeBytes;

      const logger = recordingLogger();
      log = PartitionLog.open(dir, KEEP_ALL, NOW_MS, logger);
      expect(statSync(file).size).toBe(goodBytes);
      const kept = damagedBytes < wholeBytes ? 5 : 7;
      expect(readAll(log)).toEqual(values(0, kept).map((v, i) => [i, v]));
      const recovery = logger.lines.filter((l) => l.level !== 'debug');
      expect(recovery).toHaveLength(1);
      expect(recovery[0]?.fields).toMatchObject({
        file,
        offset: goodBytes,
        bytesCut: damagedBytes - goodBytes,
      });
      // The next append lands right after the last whole batch and survives another reopen.
      expect(log.append(batchOf(['after']), NOW_MS, false)).toBe(kept);
      log.close();
      log = PartitionLog.open(dir, KEEP_ALL, NOW_MS);
      expect(readAll(log).at(-1)).toEqual([kept, 'after']);
      log.close();
    },
  );
});
