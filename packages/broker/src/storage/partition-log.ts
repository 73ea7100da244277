import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
} from 'node:fs';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@candlestream/logger';
import { syncDirectory, writeFully } from './files.js';
import {
  assignOffsets,
  batchHeader,
  canDecode,
  decodeRecords,
  scanStoredBatches,
  stampLogAppendTime,
  type StoredBatch,
} from '../records/record-batch.js';

/** How much of a partition is kept; mirrors the Kafka topic configs of the same names. */
export interface RetentionPolicy {
  /** retention.ms: segments whose last append is older are deleted; -1 keeps forever. */
  retentionMs: number;
  /** retention.bytes: oldest segments are deleted while the rest still exceeds this; -1 = no cap. */
  retentionBytes: number;
  /** segment.bytes: the active segment rolls once it holds this much. */
  segmentBytes: number;
  /** segment.ms: ... or once it is this old, so time retention can reach recent data too. */
  segmentMs: number;
}

const SEGMENT_SUFFIX = '.log';
const OFFSET_DIGITS = 20;

class Segment {
  readonly batches: StoredBatch[] = [];
  bytes = 0;
  lastAppendMs: number;
  fd: number | null = null;
  dirty = false;

  constructor(
    readonly baseOffset: number,
    readonly createdAtMs: number,
    readonly path: string | null,
  ) {
    this.lastAppendMs = createdAtMs;
  }
}

export interface ReadResult {
  batches: Buffer[];
  bytes: number;
}

/**
 * One partition's log: segments of record batches, held in memory and, with a data directory,
 * mirrored to append-only segment files named by base offset (as Kafka names them). Retention
 * deletes whole non-active segments, which is what advances the log start offset.
 *
 * Age is measured from when the broker appended a segment's last batch rather than from record
 * timestamps (Kafka uses the latter), so replayed or backfilled history is not deleted on arrival.
 */
export class PartitionLog {
  private readonly segments: Segment[] = [];
  private totalBytes = 0;
  private readonly waiters = new Set<() => void>();

  private closed = false;

  private constructor(
    readonly dir: string | null,
    private policy: RetentionPolicy,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens (or creates) the partition, reloading segment files when `dir` is given. Only the last
   * segment is reopened for writing, in append mode (O_APPEND): every write lands at the end of
   * the file whatever was there, so a restart can never write over records it already holds.
   */
  static open(
    dir: string | null,
    policy: RetentionPolicy,
    nowMs: number,
    logger: Logger = silentLogger(),
  ): PartitionLog {
    const log = new PartitionLog(dir, policy, logger);
    if (dir !== null) {
      mkdirSync(dir, { recursive: true });
      const files = readdirSync(dir)
        .filter((name) => name.endsWith(SEGMENT_SUFFIX))
        .sort();
      for (const name of files)
        log.loadSegment(join(dir, name), Number(name.slice(0, -SEGMENT_SUFFIX.length)), nowMs);
    }
    if (log.segments.length === 0) log.segments.push(log.newSegment(0, nowMs));
    else if (log.active.path !== null) log.active.fd = openSync(log.active.path, 'a');
    return log;
  }

  private loadSegment(path: string, baseOffset: number, nowMs: number): void {
    const data = readFileSync(path);
    const { batches, validBytes } = scanStoredBatches(data);
    const segment = new Segment(baseOffset, nowMs, path);
    if (validBytes < data.length) {
      // A torn write at the tail (killed mid-append) or trailing garbage: keep every whole batch
      // before it and cut the rest, as Kafka's log recovery does. Nothing cut was acknowledged:
      // an ack follows the complete write of its batches.
      truncateSync(path, validBytes);
      this.logger.warn('segment tail truncated on load', {
        file: path,
        offset: validBytes,
        bytesCut: data.length - validBytes,
        batchesKept: batches.length,
      });
    }
    for (const batch of batches) {
      if (batch.baseOffset < this.logEndOffset) continue;
      segment.batches.push(batch);
      segment.bytes += batch.data.length;
    }
    this.totalBytes += segment.bytes;
    this.segments.push(segment);
  }

  private newSegment(baseOffset: number, nowMs: number): Segment {
    const path =
      this.dir === null
        ? null
        : join(this.dir, String(baseOffset).padStart(OFFSET_DIGITS, '0') + SEGMENT_SUFFIX);
    const segment = new Segment(baseOffset, nowMs, path);
    if (path !== null && this.dir !== null) {
      segment.fd = openSync(path, 'a');
      // The new file's directory entry must reach the disk too, or a machine crash could lose
      // the whole segment even after its data was fdatasync'd.
      syncDirectory(this.dir);
    }
    return segment;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  /** The offset the next record will get: also the high watermark and last stable offset. */
  get logEndOffset(): number {
    const active = this.segments[this.segments.length - 1];
    if (!active) return 0;
    const last = active.batches[active.batches.length - 1];
    return last ? last.lastOffset + 1 : active.baseOffset;
  }

  get logStartOffset(): number {
    for (const segment of this.segments) {
      const first = segment.batches[0];
      if (first) return first.baseOffset;
    }
    return this.logEndOffset;
  }

  get sizeBytes(): number {
    return this.totalBytes;
  }

  setPolicy(policy: RetentionPolicy): void {
    this.policy = policy;
  }

  /**
   * Appends validated batches, assigning consecutive offsets. Returns the first offset.
   * With `logAppendTime`, batches are stamped with the append time (message.timestamp.type).
   */
  append(batches: StoredBatch[], nowMs: number, logAppendTime: boolean): number {
    // After close() the file is gone: an append now would be acknowledged yet never stored.
    if (this.closed) throw new Error(`partition log ${this.dir ?? '(memory)'} is closed`);
    this.maybeRoll(nowMs);
    const segment = this.active;
    const firstOffset = this.logEndOffset;
    let next = firstOffset;
    for (const batch of batches) {
      assignOffsets(batch, next);
      if (logAppendTime) stampLogAppendTime(batch, nowMs);
      next = batch.lastOffset + 1;
    }
    // File first, memory second: if the write throws (disk full), nothing is served or acked
    // that the file does not hold.
    if (segment.fd !== null) {
      writeFully(
        segment.fd,
        batches.map((b) => b.data),
      );
      segment.dirty = true;
    }
    for (const batch of batches) {
      segment.batches.push(batch);
      segment.bytes += batch.data.length;
      this.totalBytes += batch.data.length;
    }
    segment.lastAppendMs = nowMs;
    this.enforceRetention(nowMs);
    for (const wake of [...this.waiters]) wake();
    return firstOffset;
  }

  private maybeRoll(nowMs: number): void {
    const active = this.active;
    if (active.batches.length === 0) return;
    if (
      active.bytes >= this.policy.segmentBytes ||
      nowMs - active.createdAtMs >= this.policy.segmentMs
    ) {
      this.closeSegment(active);
      this.segments.push(this.newSegment(this.logEndOffset, nowMs));
    }
  }

  /** Deletes whole old segments by age and by size; never the active one. */
  enforceRetention(nowMs: number): void {
    this.maybeRoll(nowMs);
    while (this.segments.length > 1) {
      const oldest = this.segments[0] as Segment;
      const tooOld =
        this.policy.retentionMs >= 0 && nowMs - oldest.lastAppendMs > this.policy.retentionMs;
      const tooBig =
        this.policy.retentionBytes >= 0 &&
        this.totalBytes - oldest.bytes >= this.policy.retentionBytes;
      if (!tooOld && !tooBig) break;
      this.segments.shift();
      this.totalBytes -= oldest.bytes;
      this.closeSegment(oldest);
      if (oldest.path !== null) rmSync(oldest.path, { force: true });
    }
  }

  /**
   * Batches from the one holding `offset` onwards, up to `maxBytes`; the first batch is returned
   * even when larger, so a consumer can always make progress (KIP-74). Whole batches only: a
   * client skips records before its fetch offset itself.
   */
  read(offset: number, maxBytes: number): ReadResult {
    const result: ReadResult = { batches: [], bytes: 0 };
    let s = this.findSegment(offset);
    if (s < 0) return result;
    let b = findBatch(this.segments[s] as Segment, offset);
    for (; s < this.segments.length; s++, b = 0) {
      const segment = this.segments[s] as Segment;
      for (; b < segment.batches.length; b++) {
        const batch = segment.batches[b] as StoredBatch;
        if (result.bytes > 0 && result.bytes + batch.data.length > maxBytes) return result;
        result.batches.push(batch.data);
        result.bytes += batch.data.length;
      }
    }
    return result;
  }

  private findSegment(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.segments[mid] as Segment).baseOffset <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found === -1 && this.segments.length > 0 ? 0 : found;
  }

  /**
   * The earliest record with timestamp >= `timestampMs` (ListOffsets by time, KIP-79), found by
   * batch maxTimestamp and then inside the first candidate batch. The header answers alone when
   * it can: with LogAppendTime every record has the batch's time, and a batch whose first
   * timestamp already qualifies starts with the answer. Otherwise the records are read, if the
   * broker can decode the codec (none, gzip); for snappy, lz4 and zstd the answer is the batch's
   * base offset: never later than the exact record, so a consumer seeking there misses nothing.
   */
  offsetForTimestamp(timestampMs: number): { offset: number; timestamp: number } | null {
    for (const segment of this.segments) {
      for (const batch of segment.batches) {
        if (batch.maxTimestamp < timestampMs) continue;
        const header = batchHeader(batch.data);
        if (header.logAppendTime)
          return { offset: batch.baseOffset, timestamp: batch.maxTimestamp };
        if (header.firstTimestamp >= timestampMs)
          return { offset: batch.baseOffset, timestamp: header.firstTimestamp };
        if (!canDecode(header.compression))
          return { offset: batch.baseOffset, timestamp: batch.maxTimestamp };
        for (const record of decodeRecords(batch.data)) {
          if (record.timestamp >= timestampMs)
            return { offset: record.offset, timestamp: record.timestamp };
        }
      }
    }
    return null;
  }

  /** Resolves on the next append (or when `signal` aborts): what a parked Fetch waits for. */
  waitForAppend(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        this.waiters.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  /** Forces appended bytes to disk (fdatasync); called on a timer and at close. */
  flush(): void {
    for (const segment of this.segments) {
      if (segment.fd !== null && segment.dirty) {
        fdatasyncSync(segment.fd);
        segment.dirty = false;
      }
    }
  }

  private closeSegment(segment: Segment): void {
    if (segment.fd === null) return;
    if (segment.dirty) fdatasyncSync(segment.fd);
    closeSync(segment.fd);
    segment.fd = null;
    segment.dirty = false;
  }

  close(): void {
    this.closed = true;
    for (const segment of this.segments) this.closeSegment(segment);
    for (const wake of [...this.waiters]) wake();
  }
}

function findBatch(segment: Segment, offset: number): number {
  let lo = 0;
  let hi = segment.batches.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((segment.batches[mid] as StoredBatch).lastOffset < offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
