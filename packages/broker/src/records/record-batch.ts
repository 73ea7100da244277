import { gunzipSync, gzipSync } from 'node:zlib';
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';
import { ErrorCode, type ErrorCodeValue } from '../protocol/errors.js';
import { crc32c } from './crc32c.js';

/**
 * Record batch v2 layout (protocol guide, "Record Batch"; KIP-98). Byte offsets of the header
 * fields; the CRC covers everything from `attributes` to the end of the batch, so rewriting
 * baseOffset or partitionLeaderEpoch keeps it valid.
 */
const BASE_OFFSET_AT = 0;
const BATCH_LENGTH_AT = 8;
const LEADER_EPOCH_AT = 12;
const MAGIC_AT = 16;
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;
const LAST_OFFSET_DELTA_AT = 23;
const FIRST_TIMESTAMP_AT = 27;
const MAX_TIMESTAMP_AT = 35;
const RECORD_COUNT_AT = 57;
export const BATCH_HEADER_BYTES = 61;
/** baseOffset (8) and batchLength (4) precede what batchLength counts. */
const LOG_OVERHEAD_BYTES = 12;

const COMPRESSION_MASK = 0x07;
const TIMESTAMP_TYPE_LOG_APPEND = 0x08;
const CONTROL_FLAG = 0x20;

export const Compression = { NONE: 0, GZIP: 1, SNAPPY: 2, LZ4: 3, ZSTD: 4 } as const;
/** The highest codec id Kafka defines; 5-7 are unassigned and refused. */
const MAX_CODEC = Compression.ZSTD;
/** KIP-110: zstd only in Produce v7+, so an older client cannot be sent what it cannot read. */
const FIRST_ZSTD_PRODUCE_VERSION = 7;

/** A batch as stored: the producer's bytes (own copy) plus the header fields the log indexes. */
export interface StoredBatch {
  data: Buffer;
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  recordCount: number;
}

export interface DecodedRecord {
  offset: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: { key: string; value: Buffer | null }[];
}

export type ParseResult =
  { ok: true; batches: StoredBatch[] } | { ok: false; error: ErrorCodeValue; message: string };

function fail(error: ErrorCodeValue, message: string): ParseResult {
  return { ok: false, error, message };
}

/**
 * Splits a Produce request's `records` into batches and validates each as a broker must before
 * appending: magic 2 only, whole batches, CRC-32C matches, a codec Kafka defines (none, gzip,
 * snappy, lz4, zstd; zstd from Produce v7), no client-sent control batches, and a record count
 * that agrees with lastOffsetDelta (the broker assigns offsets from it). Everything checked is
 * in the v2 batch header, so compressed batches are never decompressed: they are stored and
 * served exactly as the producer sent them. Returned batches are copies, so the request frame
 * can be released.
 */
export function parseProducedBatches(records: Buffer, produceVersion = 7): ParseResult {
  const batches: StoredBatch[] = [];
  let at = 0;
  while (at < records.length) {
    if (records.length - at < BATCH_HEADER_BYTES)
      return fail(ErrorCode.CORRUPT_MESSAGE, 'truncated batch header');
    const batchLength = records.readInt32BE(at + BATCH_LENGTH_AT);
    const total = batchLength + LOG_OVERHEAD_BYTES;
    if (batchLength < BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES || at + total > records.length) {
      return fail(ErrorCode.CORRUPT_MESSAGE, 'batch length does not fit the request');
    }
    const magic = records.readInt8(at + MAGIC_AT);
    if (magic !== 2)
      return fail(
        ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        `record magic ${magic} is not supported`,
      );
    const view = records.subarray(at, at + total);
    if (crc32c(view.subarray(ATTRIBUTES_AT)) !== view.readUInt32BE(CRC_AT)) {
      return fail(ErrorCode.CORRUPT_MESSAGE, 'batch CRC-32C mismatch');
    }
    const attributes = view.readInt16BE(ATTRIBUTES_AT);
    const codec = attributes & COMPRESSION_MASK;
    if (codec > MAX_CODEC) {
      return fail(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, `compression codec ${codec} is unknown`);
    }
    if (codec === Compression.ZSTD && produceVersion < FIRST_ZSTD_PRODUCE_VERSION) {
      return fail(
        ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
        `zstd needs Produce v${FIRST_ZSTD_PRODUCE_VERSION}+, got v${produceVersion}`,
      );
    }
    if (attributes & CONTROL_FLAG)
      return fail(ErrorCode.INVALID_RECORD, 'clients may not produce control batches');
    const lastOffsetDelta = view.readInt32BE(LAST_OFFSET_DELTA_AT);
    const recordCount = view.readInt32BE(RECORD_COUNT_AT);
    if (recordCount <= 0 || lastOffsetDelta !== recordCount - 1) {
      return fail(ErrorCode.INVALID_RECORD, 'record count does not match lastOffsetDelta');
    }
    batches.push({
      data: Buffer.from(view),
      baseOffset: 0,
      lastOffset: lastOffsetDelta,
      maxTimestamp: Number(view.readBigInt64BE(MAX_TIMESTAMP_AT)),
      recordCount,
    });
    at += total;
  }
  if (batches.length === 0)
    return fail(ErrorCode.CORRUPT_MESSAGE, 'no record batch in the request');
  return { ok: true, batches };
}

/** Gives the batch its log offsets: baseOffset sits outside the CRC (KIP-98), so no re-checksum. */
export function assignOffsets(batch: StoredBatch, baseOffset: number): void {
  const delta = batch.lastOffset - batch.baseOffset;
  batch.baseOffset = baseOffset;
  batch.lastOffset = baseOffset + delta;
  batch.data.writeBigInt64BE(BigInt(baseOffset), BASE_OFFSET_AT);
  batch.data.writeInt32BE(0, LEADER_EPOCH_AT);
}

/**
 * message.timestamp.type=LogAppendTime: the broker stamps the batch (timestamp-type bit and
 * maxTimestamp, which consumers then use for every record) and must recompute the CRC.
 */
export function stampLogAppendTime(batch: StoredBatch, nowMs: number): void {
  const attributes = batch.data.readInt16BE(ATTRIBUTES_AT) | TIMESTAMP_TYPE_LOG_APPEND;
  batch.data.writeInt16BE(attributes, ATTRIBUTES_AT);
  batch.data.writeBigInt64BE(BigInt(nowMs), MAX_TIMESTAMP_AT);
  batch.data.writeUInt32BE(crc32c(batch.data.subarray(ATTRIBUTES_AT)), CRC_AT);
  batch.maxTimestamp = nowMs;
}

/**
 * Reads stored batches back from a segment file's bytes. Stops at the first incomplete or
 * corrupt batch and reports how many bytes were good, so a torn write at the tail after a crash
 * is truncated rather than served.
 */
export function scanStoredBatches(data: Buffer): { batches: StoredBatch[]; validBytes: number } {
  const batches: StoredBatch[] = [];
  let at = 0;
  while (data.length - at >= BATCH_HEADER_BYTES) {
    const total = data.readInt32BE(at + BATCH_LENGTH_AT) + LOG_OVERHEAD_BYTES;
    if (total < BATCH_HEADER_BYTES || at + total > data.length) break;
    const view = data.subarray(at, at + total);
    if (
      view.readInt8(MAGIC_AT) !== 2 ||
      crc32c(view.subarray(ATTRIBUTES_AT)) !== view.readUInt32BE(CRC_AT)
    )
      break;
    const baseOffset = Number(view.readBigInt64BE(BASE_OFFSET_AT));
    batches.push({
      data: view,
      baseOffset,
      lastOffset: baseOffset + view.readInt32BE(LAST_OFFSET_DELTA_AT),
      maxTimestamp: Number(view.readBigInt64BE(MAX_TIMESTAMP_AT)),
      recordCount: view.readInt32BE(RECORD_COUNT_AT),
    });
    at += total;
  }
  return { batches, validBytes: at };
}

/** What the v2 header says about a stored batch, without touching its (maybe compressed) records. */
export function batchHeader(data: Buffer): {
  compression: number;
  logAppendTime: boolean;
  firstTimestamp: number;
  maxTimestamp: number;
} {
  const attributes = data.readInt16BE(ATTRIBUTES_AT);
  return {
    compression: attributes & COMPRESSION_MASK,
    logAppendTime: (attributes & TIMESTAMP_TYPE_LOG_APPEND) !== 0,
    firstTimestamp: Number(data.readBigInt64BE(FIRST_TIMESTAMP_AT)),
    maxTimestamp: Number(data.readBigInt64BE(MAX_TIMESTAMP_AT)),
  };
}

/** Codecs whose records the broker itself can read (Node's zlib); the others it only stores. */
export function canDecode(compression: number): boolean {
  return compression === Compression.NONE || compression === Compression.GZIP;
}

/** Decodes the records of one batch (decompressing gzip); used for timestamp lookups and tests. */
export function decodeRecords(data: Buffer): DecodedRecord[] {
  const baseOffset = Number(data.readBigInt64BE(BASE_OFFSET_AT));
  const attributes = data.readInt16BE(ATTRIBUTES_AT);
  const firstTimestamp = Number(data.readBigInt64BE(FIRST_TIMESTAMP_AT));
  const maxTimestamp = Number(data.readBigInt64BE(MAX_TIMESTAMP_AT));
  const count = data.readInt32BE(RECORD_COUNT_AT);
  const codec = attributes & COMPRESSION_MASK;
  let body = data.subarray(BATCH_HEADER_BYTES);
  if (codec === Compression.GZIP) body = gunzipSync(body);
  else if (codec !== Compression.NONE)
    throw new Error(`compression codec ${codec} is not supported`);
  const logAppendTime = (attributes & TIMESTAMP_TYPE_LOG_APPEND) !== 0;
  const reader = new Reader(body);
  const out: DecodedRecord[] = [];
  for (let i = 0; i < count; i++) {
    const length = reader.varint();
    const end = reader.offset + length;
    reader.int8();
    const timestampDelta = reader.varlong();
    const offsetDelta = reader.varint();
    const key = readVarBytes(reader);
    const value = readVarBytes(reader);
    const headerCount = reader.varint();
    const headers: DecodedRecord['headers'] = [];
    for (let h = 0; h < headerCount; h++) {
      const headerKey = readVarBytes(reader);
      headers.push({ key: headerKey?.toString('utf8') ?? '', value: readVarBytes(reader) });
    }
    reader.offset = end;
    out.push({
      offset: baseOffset + offsetDelta,
      timestamp: logAppendTime ? maxTimestamp : firstTimestamp + timestampDelta,
      key,
      value,
      headers,
    });
  }
  return out;
}

function readVarBytes(reader: Reader): Buffer | null {
  const length = reader.varint();
  return length < 0 ? null : Buffer.from(reader.raw(length));
}

export interface RecordInput {
  key?: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers?: { key: string; value: Buffer }[];
}

/**
 * Builds a batch the way a producer does (tests, benchmarks and hand-made frames). baseOffset is
 * 0: the broker assigns it.
 */
export function encodeBatch(
  records: readonly RecordInput[],
  options: { compression?: number } = {},
): Buffer {
  const compression = options.compression ?? Compression.NONE;
  const firstTimestamp = records[0]?.timestamp ?? 0;
  const maxTimestamp = records.reduce((max, r) => Math.max(max, r.timestamp), firstTimestamp);
  const body = new Writer();
  records.forEach((record, index) => {
    const one = new Writer();
    one
      .int8(0)
      .varint(record.timestamp - firstTimestamp)
      .varint(index);
    writeVarBytes(one, record.key ?? null);
    writeVarBytes(one, record.value);
    const headers = record.headers ?? [];
    one.varint(headers.length);
    for (const header of headers) {
      writeVarBytes(one, Buffer.from(header.key, 'utf8'));
      writeVarBytes(one, header.value);
    }
    const bytes = one.toBuffer();
    body.varint(bytes.length).raw(bytes);
  });
  let payload = body.toBuffer();
  if (compression === Compression.GZIP) payload = gzipSync(payload);
  const header = new Writer()
    .int64(0)
    .int32(BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + payload.length)
    .int32(0)
    .int8(2)
    .int32(0)
    .int16(compression)
    .int32(records.length - 1)
    .int64(firstTimestamp)
    .int64(maxTimestamp)
    .int64(-1)
    .int16(-1)
    .int32(-1)
    .int32(records.length)
    .toBuffer();
  const batch = Buffer.concat([header, payload]);
  batch.writeUInt32BE(crc32c(batch.subarray(ATTRIBUTES_AT)), CRC_AT);
  return batch;
}

function writeVarBytes(writer: Writer, value: Buffer | null): void {
  if (value === null) writer.varint(-1);
  else writer.varint(value.length).raw(value);
}
