import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

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
 * directory every commit is appended as one JSON line, so an acknowledged commit survives a
 * process crash; the file is compacted to a snapshot at start and every COMPACT_AFTER_LINES.
 */
export class OffsetStore {
  private readonly groups = new Map<string, Map<string, CommittedOffset>>();
  private fd: number | null = null;
  private linesSinceCompaction = 0;

  private constructor(private readonly path: string | null) {}

  static open(dataDir: string | null): OffsetStore {
    const store = new OffsetStore(dataDir === null ? null : join(dataDir, OFFSETS_FILE));
    if (store.path !== null && dataDir !== null) {
      mkdirSync(dataDir, { recursive: true });
      if (existsSync(store.path)) {
        for (const line of readFileSync(store.path, 'utf8').split('\n')) {
          if (line.trim() === '') continue;
          let entry: OffsetLine;
          try {
            entry = JSON.parse(line) as OffsetLine;
          } catch {
            // A torn last line after a crash: everything before it is intact.
            continue;
          }
          store.apply(entry);
        }
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
    writeSync(this.fd, JSON.stringify(entry) + '\n');
    if (++this.linesSinceCompaction >= COMPACT_AFTER_LINES) this.compact();
  }

  private compact(): void {
    if (this.path === null) return;
    if (this.fd !== null) closeSync(this.fd);
    const lines: string[] = [];
    for (const [g, offsets] of this.groups) {
      for (const [key, v] of offsets) {
        const { topic, partition } = splitKey(key);
        lines.push(JSON.stringify({ g, t: topic, p: partition, v } satisfies OffsetLine));
      }
    }
    const tmp = this.path + '.tmp';
    writeFileSync(tmp, lines.length ? lines.join('\n') + '\n' : '');
    renameSync(tmp, this.path);
    this.fd = openSync(this.path, 'a');
    this.linesSinceCompaction = 0;
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
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

function partitionKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

function splitKey(key: string): { topic: string; partition: number } {
  const colon = key.indexOf(':');
  return { partition: Number(key.slice(0, colon)), topic: key.slice(colon + 1) };
}
