import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IS_CI, KCAT_BIN } from './config.js';
import {
  kafkaClient,
  kcatFound,
  randomName,
  runKcat,
  spawnBrokerProcess,
  waitFor,
  type BrokerProcess,
} from './testing.js';

/**
 * Durability across real process restarts: the broker runs as `pnpm broker` does, in its own
 * process, and is stopped with SIGTERM or SIGKILL between and during appends. The regression:
 * a reopened segment file was written from byte 0, so the second restart lost almost everything.
 */

const dirs: string[] = [];
const processes: BrokerProcess[] = [];

afterEach(() => {
  for (const p of processes.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<BrokerProcess> {
  const broker = await spawnBrokerProcess(['--data-dir', dataDir]);
  processes.push(broker);
  return broker;
}

async function stop(broker: BrokerProcess, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  broker.child.kill(signal);
  const exit = await broker.exited;
  if (signal === 'SIGTERM') expect(exit.code, 'a clean stop exits 0').toBe(0);
  else expect(exit.signal).toBe('SIGKILL');
}

/** kafkajs with no retries: an unacknowledged send fails fast once the broker is gone. */
function client(brokers: string, retries = 8): ReturnType<typeof kafkaClient> {
  return kafkaClient(brokers, { retry: { retries, initialRetryTime: 50, maxRetryTime: 500 } });
}

async function highWatermark(brokers: string, topic: string): Promise<number> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const [partition] = await admin.fetchTopicOffsets(topic);
    return Number(partition?.high);
  } finally {
    await admin.disconnect();
  }
}

/** Every record of partition 0 as offset → value, read with a kafkajs consumer (no group commit). */
async function readAll(brokers: string, topic: string, end: number): Promise<Map<number, string>> {
  const seen = new Map<number, string>();
  const duplicates: number[] = [];
  const consumer = client(brokers).consumer({
    groupId: randomName('reader'),
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: ({ message }) => {
      const offset = Number(message.offset);
      if (seen.has(offset)) duplicates.push(offset);
      seen.set(offset, String(message.value));
      return Promise.resolve();
    },
  });
  // Up to the last offset; a lost record then shows as a missing offset below, not as a timeout.
  await waitFor(() => seen.has(end - 1), `records read back up to offset ${end - 1}`, 30_000);
  await consumer.disconnect();
  expect(duplicates).toEqual([]);
  return seen;
}

it.runIf(!kcatFound && IS_CI)('kcat is installed (CI=true requires it)', () => {
  throw new Error(`CI=true and ${KCAT_BIN} is missing: the CI image must apt-get install -y kcat`);
});

describe('broker process restarts (SIGTERM and SIGKILL) with a data directory', () => {
  it('every acknowledged record survives six restarts at its original offset, and committed offsets survive too', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'candlestream-restart-'));
    dirs.push(dataDir);
    const topic = randomName('restart');
    const groupId = randomName('restart-group');
    /** offset → value for every acknowledged record. */
    const acked = new Map<number, string>();
    /** Values sent by an in-flight kcat when the broker was killed: some may be lost, none twice. */
    const inFlightKcat: { prefix: string; lines: string[] }[] = [];
    let lastCommitted = -1;

    let broker = await start(dataDir);
    const admin = client(broker.brokers).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    await admin.disconnect();

    const signals = ['SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL'] as const;
    for (const [round, signal] of signals.entries()) {
      // What the previous rounds acknowledged is all there, and nothing else moved.
      expect(await highWatermark(broker.brokers, topic)).toBeGreaterThanOrEqual(acked.size);
      const commitsAdmin = client(broker.brokers).admin();
      await commitsAdmin.connect();
      const [committed] = await commitsAdmin.fetchOffsets({ groupId, topics: [topic] });
      expect(Number(committed?.partitions[0]?.offset)).toBe(lastCommitted);

      // kafkajs: a few batches, acks=all, offsets as the broker answered them.
      const producer = client(broker.brokers).producer();
      await producer.connect();
      for (let b = 0; b < 5; b++) {
        const values = Array.from({ length: 40 }, (_, i) => `kjs-r${round}-b${b}-${i}`);
        const [meta] = await producer.send({
          topic,
          acks: -1,
          messages: values.map((value) => ({ value })),
        });
        const base = Number(meta?.baseOffset);
        values.forEach((value, i) => acked.set(base + i, value));
      }
      await producer.disconnect();

      // kcat (librdkafka): it exits 0 only once every line was acknowledged with acks=all. Nothing
      // else writes meanwhile, so its records are the offsets between the two high watermarks.
      if (kcatFound) {
        const before = await highWatermark(broker.brokers, topic);
        const lines = Array.from({ length: 300 }, (_, i) => `kcat-r${round}-${i}`);
        const result = await runKcat(
          ['-b', broker.brokers, '-P', '-t', topic, '-p', '0', '-X', 'acks=all'],
          lines.join('\n') + '\n',
        );
        expect(result.code, result.stderr).toBe(0);
        expect(await highWatermark(broker.brokers, topic)).toBe(before + lines.length);
        lines.forEach((value, i) => acked.set(before + i, value));
      }

      // A group commit, as a consumer makes it (OffsetCommit), at the current end of the log.
      lastCommitted = await highWatermark(broker.brokers, topic);
      await commitsAdmin.setOffsets({
        groupId,
        topic,
        partitions: [{ partition: 0, offset: String(lastCommitted) }],
      });
      await commitsAdmin.disconnect();

      if (signal === 'SIGKILL') {
        // Appends in flight when the process dies: kafkajs one record per request (each ack
        // recorded as it arrives) and, concurrently, kcat streaming lines it will never finish.
        const streaming = client(broker.brokers, 0).producer();
        await streaming.connect();
        let killed = false;
        const kafkajsLoop = (async () => {
          for (let i = 0; !killed; i++) {
            const value = `kjs-inflight-r${round}-${i}`;
            try {
              const [meta] = await streaming.send({ topic, acks: -1, messages: [{ value }] });
              acked.set(Number(meta?.baseOffset), value);
            } catch {
              return;
            }
          }
        })();
        const startHw = await highWatermark(broker.brokers, topic);
        let kcat: ReturnType<typeof spawn> | null = null;
        let feeding: ReturnType<typeof setInterval> | null = null;
        if (kcatFound) {
          const prefix = `kcat-inflight-r${round}-`;
          const lines: string[] = [];
          inFlightKcat.push({ prefix, lines });
          const child = spawn(
            KCAT_BIN,
            ['-b', broker.brokers, '-P', '-t', topic, '-p', '0', '-X', 'acks=all'],
            { stdio: ['pipe', 'ignore', 'ignore'] },
          );
          kcat = child;
          // Its stdin breaks when it is killed with lines still unread: expected here.
          child.stdin.on('error', () => undefined);
          // Fed at a steady pace so it is still producing when the broker dies.
          feeding = setInterval(() => {
            const from = lines.length;
            const chunk = Array.from({ length: 200 }, (_, i) => `${prefix}${from + i}`);
            lines.push(...chunk);
            child.stdin.write(chunk.join('\n') + '\n');
          }, 10);
        }
        await waitFor(async () => {
          const hw = await highWatermark(broker.brokers, topic);
          const kafkajsSent = [...acked.values()].filter((v) =>
            v.startsWith(`kjs-inflight-r${round}-`),
          ).length;
          return kafkajsSent >= 20 && (!kcatFound || hw - startHw - kafkajsSent >= 1000);
        }, 'appends in flight from both clients');
        broker.child.kill('SIGKILL');
        await broker.exited;
        killed = true;
        if (feeding) clearInterval(feeding);
        await kafkajsLoop;
        await streaming.disconnect().catch(() => undefined);
        kcat?.kill('SIGKILL');
      } else {
        await stop(broker, signal);
      }
      broker = await start(dataDir);
    }

    // Everything acknowledged, exactly once, at the offset it was acknowledged with.
    const end = await highWatermark(broker.brokers, topic);
    const stored = await readAll(broker.brokers, topic, end);
    expect(stored.size).toBe(end);
    const missing = [...acked].filter(([offset, value]) => stored.get(offset) !== value);
    expect(missing.slice(0, 5), `${missing.length} acknowledged records lost or moved`).toEqual([]);
    const counts = new Map<string, number>();
    for (const value of stored.values()) counts.set(value, (counts.get(value) ?? 0) + 1);
    expect([...counts].filter(([, n]) => n > 1)).toEqual([]);
    // What survived of a killed kcat stream is a prefix of what it sent, in order.
    for (const { prefix, lines } of inFlightKcat) {
      const survivors = [...stored.values()].filter((v) => v.startsWith(prefix));
      expect(survivors.length).toBeGreaterThan(0);
      expect(survivors).toEqual(lines.slice(0, survivors.length));
    }

    // A real consumer group's commits (kafkajs autoCommit) survive a SIGKILL too.
    const realGroup = randomName('real-group');
    const consumer = client(broker.brokers).consumer({ groupId: realGroup, maxWaitTimeInMs: 100 });
    let consumed = 0;
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async (payload) => {
        for (const message of payload.batch.messages) payload.resolveOffset(message.offset);
        consumed += payload.batch.messages.length;
        await payload.commitOffsetsIfNecessary();
      },
      autoCommitThreshold: 1,
    });
    await waitFor(() => consumed >= end, 'the group consumed everything');
    const groupAdmin = client(broker.brokers).admin();
    await groupAdmin.connect();
    await waitFor(async () => {
      const [c] = await groupAdmin.fetchOffsets({ groupId: realGroup, topics: [topic] });
      return Number(c?.partitions[0]?.offset) === end;
    }, 'the group commit of the end offset');
    await groupAdmin.disconnect();
    await consumer.disconnect();
    await stop(broker, 'SIGKILL');

    broker = await start(dataDir);
    const finalAdmin = client(broker.brokers).admin();
    await finalAdmin.connect();
    const [real] = await finalAdmin.fetchOffsets({ groupId: realGroup, topics: [topic] });
    const [manual] = await finalAdmin.fetchOffsets({ groupId, topics: [topic] });
    await finalAdmin.disconnect();
    expect(Number(real?.partitions[0]?.offset)).toBe(end);
    expect(Number(manual?.partitions[0]?.offset)).toBe(lastCommitted);
    await stop(broker, 'SIGTERM');
  }, 180_000);

  it('a torn segment tail is cut on start with one log line, and every whole batch is served', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'candlestream-torn-'));
    dirs.push(dataDir);
    const topic = randomName('torn');
    let broker = await start(dataDir);
    const kafka = client(broker.brokers);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    for (let b = 0; b < 3; b++)
      await producer.send({
        topic,
        messages: [{ value: `whole-${b}-a` }, { value: `whole-${b}-b` }],
      });
    await producer.disconnect();
    await stop(broker, 'SIGTERM');

    const partitionDir = join(dataDir, 'topics', topic, '0');
    const [segment] = readdirSync(partitionDir).filter((f) => f.endsWith('.log'));
    const file = join(partitionDir, segment as string);
    const size = statSync(file).size;
    truncateSync(file, size - 5);

    broker = await start(dataDir);
    const cuts = broker.lines.filter((l) => l['msg'] === 'segment tail truncated on load');
    expect(cuts).toHaveLength(1);
    expect(cuts[0]).toMatchObject({ level: 'warn', file, bytesCut: expect.any(Number) as number });
    expect(Number(cuts[0]?.['offset']) + Number(cuts[0]?.['bytesCut'])).toBe(size - 5);
    expect(statSync(file).size).toBe(cuts[0]?.['offset']);
    const stored = await readAll(broker.brokers, topic, 4);
    expect([...stored.values()]).toEqual(['whole-0-a', 'whole-0-b', 'whole-1-a', 'whole-1-b']);
    await stop(broker, 'SIGTERM');
  });
});
