import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
} from 'node:fs';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@candlestream/logger';
import { syncDirectory, writeFully } from '../storage/files.js';

export interface CommittedOffset {
  offset: number;
  leaderEpoch: number;
  metadata: string | null;
  commitTimestampMs: number;
}

interface OffsetLine {
  g: string;
  t: string;
  p: number;
  /** Absent: the entry was deleted (its topic went away). */
  v?: CommittedOffset;
}

const OFFSETS_FILE = 'consumer-offsets.jsonl';
/** Rewrite the file as a snapshot once this many commits have been appended since the last one. */
const COMPACT_AFTER_LINES = 50_000;

/**
 * Committed consumer-group offsets (what Kafka keeps in __consumer_offsets). With a data
 * directory every commit is appended (O_APPEND) as one JSON line before it is acknowledged, so
 * an acknowledged commit survives a process kill; the file is fdatasync'd by flush() and at
 * close, and compacted to a snapshot at start and every COMPACT_AFTER_LINES. A snapshot is
 * fsync'd before it is renamed over the log, so a machine crash leaves the old file or the new
 * one, never an empty one.
 */
export class OffsetStore {
  private readonly groups = new Map<string, Map<string, CommittedOffset>>();
  private fd: number | null = null;
  private dirty = false;
  private linesSinceCompaction = 0;

  private constructor(
    private readonly path: string | null,
    private readonly dir: string | null,
  ) {}

  static open(dataDir: string | null, logger: Logger = silentLogger()): OffsetStore {
    const store = new OffsetStore(dataDir === null ? null : join(dataDir, OFFSETS_FILE), dataDir);
    if (store.path !== null && dataDir !== null) {
      mkdirSync(dataDir, { recursive: true });
      if (existsSync(store.path)) {
        let skipped = 0;
        let skippedBytes = 0;
        for (const line of readFileSync(store.path, 'utf8').split('\n')) {
          if (line.trim() === '') continue;
          const entry = parseLine(line);
          if (entry) store.apply(entry);
          else {
            // A torn last line after a kill, or damage: every whole line is still applied.
            skipped++;
            skippedBytes += Buffer.byteLength(line) + 1;
          }
        }
        if (skipped > 0)
          logger.warn('offset log lines dropped on load', {
            file: store.path,
            lines: skipped,
            bytesCut: skippedBytes,
          });
      }
      store.compact();
    }
    return store;
  }

  private apply(entry: OffsetLine): void {
    let group = this.groups.get(entry.g);
    if (!group) {
      group = new Map();
      this.groups.set(entry.g, group);
    }
    const key = partitionKey(entry.t, entry.p);
    if (entry.v) group.set(key, entry.v);
    else group.delete(key);
    if (group.size === 0 && !entry.v) this.groups.delete(entry.g);
  }

  private append(entry: OffsetLine): void {
    this.apply(entry);
    if (this.fd === null) return;
    writeFully(this.fd, [Buffer.from(JSON.stringify(entry) + '\n')]);
    this.dirty = true;
    if (++this.linesSinceCompaction >= COMPACT_AFTER_LINES) this.compact();
  }

  private compact(): void {
    if (this.path === null || this.dir === null) return;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    const lines: string[] = [];
    for (const [g, offsets] of this.groups) {
      for (const [key, v] of offsets) {
        const { topic, partition } = splitKey(key);
        lines.push(JSON.stringify({ g, t: topic, p: partition, v } satisfies OffsetLine));
      }
    }
    const tmp = this.path + '.tmp';
    const tmpFd = openSync(tmp, 'w');
    try {
      writeFully(tmpFd, [Buffer.from(lines.length ? lines.join('\n') + '\n' : '')]);
      fsyncSync(tmpFd);
    } finally {
      closeSync(tmpFd);
    }
    renameSync(tmp, this.path);
    syncDirectory(this.dir);
    this.fd = openSync(this.path, 'a');
    this.dirty = false;
    this.linesSinceCompaction = 0;
  }

  /** Forces appended commits to disk (fdatasync); called on the broker's flush timer and at close. */
  flush(): void {
    if (this.fd !== null && this.dirty) fdatasyncSync(this.fd);
    this.dirty = false;
  }

  commit(group: string, topic: string, partition: number, value: CommittedOffset): void {
    this.append({ g: group, t: topic, p: partition, v: value });
  }

  get(group: string, topic: string, partition: number): CommittedOffset | undefined {
    return this.groups.get(group)?.get(partitionKey(topic, partition));
  }

  /** Every committed partition of a group, grouped by topic. */
  forGroup(group: string): Map<string, Map<number, CommittedOffset>> {
    const out = new Map<string, Map<number, CommittedOffset>>();
    for (const [key, value] of this.groups.get(group) ?? []) {
      const { topic, partition } = splitKey(key);
      let partitions = out.get(topic);
      if (!partitions) {
        partitions = new Map();
        out.set(topic, partitions);
      }
      partitions.set(partition, value);
    }
    return out;
  }

  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  /** Kafka drops a deleted topic's committed offsets; so does this store. */
  deleteTopic(topic: string): void {
    for (const [g, offsets] of [...this.groups]) {
      for (const key of [...offsets.keys()]) {
        const split = splitKey(key);
        if (split.topic === topic) this.append({ g, t: topic, p: split.partition });
      }
    }
  }

  close(): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** One line of the offsets log, or null when it is not a whole, well-formed entry. */
function parseLine(line: string): OffsetLine | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const entry = parsed as Partial<OffsetLine>;
  if (typeof entry.g !== 'string' || typeof entry.t !== 'string' || typeof entry.p !== 'number')
    return null;
  if (entry.v !== undefined && (typeof entry.v !== 'object' || typeof entry.v.offset !== 'number'))
    return null;
  return entry as OffsetLine;
}

function partitionKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

function splitKey(key: string): { topic: string; partition: number } {
  const colon = key.indexOf(':');
  return { partition: Number(key.slice(0, colon)), topic: key.slice(colon + 1) };
}
