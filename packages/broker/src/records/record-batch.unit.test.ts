import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../protocol/errors.js';
import { withCodec } from './fixtures.js';
import {
  batchHeader,
  Compression,
  decodeRecords,
  encodeBatch,
  parseProducedBatches,
  scanStoredBatches,
} from './record-batch.js';

const records = [
  {
    key: Buffer.from('BTC-USD'),
    value: Buffer.from('{"price":1}'),
    timestamp: 1000,
    headers: [{ key: 'h', value: Buffer.from('v') }],
  },
  { key: null, value: null, timestamp: 1005 },
];

describe('record batches', () => {
  it('round-trips records, uncompressed and gzip', () => {
    for (const compression of [Compression.NONE, Compression.GZIP]) {
      const decoded = decodeRecords(encodeBatch(records, { compression }));
      expect(
        decoded.map((r) => [
          r.offset,
          r.timestamp,
          r.key?.toString() ?? null,
          r.value?.toString() ?? null,
        ]),
      ).toEqual([
        [0, 1000, 'BTC-USD', '{"price":1}'],
        [1, 1005, null, null],
      ]);
      expect(decoded[0]?.headers).toEqual([{ key: 'h', value: Buffer.from('v') }]);
    }
  });

  it('splits several batches in one produce and copies them out of the request', () => {
    const two = Buffer.concat([encodeBatch(records), encodeBatch(records.slice(0, 1))]);
    const parsed = parseProducedBatches(two);
    expect(parsed.ok && parsed.batches.map((b) => b.recordCount)).toEqual([2, 1]);
    const before = parsed.ok ? Buffer.from(parsed.batches[0]?.data ?? []) : null;
    two.fill(0);
    expect(parsed.ok && parsed.batches[0]?.data).toEqual(before);
  });

  it('rejects corrupt, truncated and unsupported batches', () => {
    const good = encodeBatch(records);
    const flipped = Buffer.from(good);
    flipped[70] = (flipped[70] ?? 0) ^ 1;
    expect(parseProducedBatches(flipped)).toMatchObject({
      ok: false,
      error: ErrorCode.CORRUPT_MESSAGE,
    });
    expect(parseProducedBatches(good.subarray(0, good.length - 1))).toMatchObject({
      ok: false,
      error: ErrorCode.CORRUPT_MESSAGE,
    });
    const magic1 = Buffer.from(good);
    magic1[16] = 1;
    expect(parseProducedBatches(magic1)).toMatchObject({
      ok: false,
      error: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
    });
  });

  it('scanning stored bytes stops at a torn tail', () => {
    const two = Buffer.concat([encodeBatch(records), encodeBatch(records)]);
    const torn = two.subarray(0, two.length - 5);
    const scan = scanStoredBatches(torn);
    expect(scan.batches).toHaveLength(1);
    expect(scan.validBytes).toBe(encodeBatch(records).length);
  });

  it('accepts snappy, lz4 and zstd batches (zstd was refused as an unsupported codec) and keeps their bytes', () => {
    const gzip = encodeBatch(records, { compression: Compression.GZIP });
    for (const codec of [Compression.SNAPPY, Compression.LZ4, Compression.ZSTD]) {
      const batch = withCodec(gzip, codec);
      const parsed = parseProducedBatches(batch, 7);
      expect(parsed.ok, `codec ${codec}`).toBe(true);
      if (!parsed.ok) continue;
      expect(parsed.batches[0]?.data).toEqual(batch);
      expect(parsed.batches[0]).toMatchObject({
        recordCount: 2,
        lastOffset: 1,
        maxTimestamp: 1005,
      });
      expect(batchHeader(batch)).toMatchObject({ compression: codec, firstTimestamp: 1000 });
    }
  });

  it('refuses codec ids Kafka does not define, and zstd before Produce v7 (KIP-110)', () => {
    const batch = encodeBatch(records);
    for (const codec of [5, 6, 7]) {
      expect(parseProducedBatches(withCodec(batch, codec))).toMatchObject({
        ok: false,
        error: ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
      });
    }
    expect(parseProducedBatches(withCodec(batch, Compression.ZSTD), 6)).toMatchObject({
      ok: false,
      error: ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
    });
    expect(parseProducedBatches(withCodec(batch, Compression.LZ4), 3).ok).toBe(true);
  });
});
