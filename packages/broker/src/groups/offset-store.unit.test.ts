import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger, LogFields } from '@candlestream/logger';
import { afterEach, describe, expect, it } from 'vitest';
import { OffsetStore } from './offset-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'candlestream-offsets-'));
  dirs.push(dir);
  return dir;
}

function warnings(): Logger & { lines: { msg: string; fields: LogFields }[] } {
  const lines: { msg: string; fields: LogFields }[] = [];
  const logger: Logger = {
    error: () => undefined,
    warn: (msg, fields = {}) => lines.push({ msg, fields }),
    info: () => undefined,
    debug: () => undefined,
    child: () => logger,
  };
  return Object.assign(logger, { lines });
}

const commit = (offset: number): Parameters<OffsetStore['commit']>[3] => ({
  offset,
  leaderEpoch: -1,
  metadata: null,
  commitTimestampMs: 1,
});

describe('OffsetStore (consumer-offsets.jsonl)', () => {
  it('keeps every commit across reopens without a clean close (a killed process)', () => {
    const dir = tempDir();
    const first = OffsetStore.open(dir);
    first.commit('g', 't', 0, commit(10));
    first.commit('g', 't', 1, commit(20));
    const second = OffsetStore.open(dir); // no close(): the process died
    second.commit('g', 't', 0, commit(11));
    const third = OffsetStore.open(dir);
    expect(third.get('g', 't', 0)?.offset).toBe(11);
    expect(third.get('g', 't', 1)?.offset).toBe(20);
    for (const store of [first, second, third]) store.close();
  });

  it('a torn last line or garbage in the log is dropped with one line; every whole commit loads (garbage crashed the load)', () => {
    const dir = tempDir();
    const store = OffsetStore.open(dir);
    store.commit('g', 't', 0, commit(10));
    store.close();
    const file = join(dir, 'consumer-offsets.jsonl');
    appendFileSync(file, 'null\n42\n{"g":"g","t":"t","p":0,"v":{"offset":9');
    const logger = warnings();
    const reopened = OffsetStore.open(dir, logger);
    expect(reopened.get('g', 't', 0)?.offset).toBe(10);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]?.fields).toMatchObject({ file, lines: 3 });
    // Rewritten as a snapshot: the next commit starts on a line of its own.
    reopened.commit('g', 't', 1, commit(5));
    reopened.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
    expect(OffsetStore.open(dir).get('g', 't', 1)?.offset).toBe(5);
  });
});
