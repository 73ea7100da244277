import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker, type RunningBroker } from './index.js';
import { collectMessages, kafkaClient, randomName, waitFor } from './testing.js';

const dirs: string[] = [];
const brokers: RunningBroker[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'candlestream-broker-'));
  dirs.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(
  dataDir: string,
  port = 0,
  extra: Parameters<typeof startBroker>[0] = {},
): Promise<RunningBroker> {
  const broker = await startBroker({ port, dataDir, ...extra });
  brokers.push(broker);
  return broker;
}

describe('persistence with dataDir', () => {
  it('resumes a group from its committed offsets after a broker restart', async () => {
    const dataDir = tempDir();
    const topic = randomName('durable');
    const groupId = randomName('g');
    let broker = await start(dataDir);
    let kafka = kafkaClient(broker.brokers);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `first-${i}` })),
    });
    await producer.disconnect();

    const { consumer: consumer, items: seenBefore } = await collectMessages(kafka, topic, {
      groupId,
    });
    await waitFor(() => seenBefore.length === 100, 'the first 100 messages');
    await consumer.disconnect();
    await broker.stop();

    // Same directory, same port, fresh process state.
    broker = await start(dataDir, broker.port);
    kafka = kafkaClient(broker.brokers);
    const admin2 = kafka.admin();
    await admin2.connect();
    expect(await admin2.listTopics()).toContain(topic);
    const committed = await admin2.fetchOffsets({ groupId, topics: [topic] });
    expect(committed[0]?.partitions.reduce((s, p) => s + Number(p.offset), 0)).toBe(100);
    await admin2.disconnect();

    const producer2 = kafka.producer();
    await producer2.connect();
    await producer2.send({
      topic,
      messages: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `second-${i}` })),
    });
    await producer2.disconnect();

    const { consumer: consumer2, items: seenAfter } = await collectMessages(kafka, topic, {
      groupId,
    });
    await waitFor(() => seenAfter.length >= 50, 'the 50 new messages');
    await consumer2.disconnect();
    // Nothing from before the restart is delivered again: the group resumed at its commits.
    expect(seenAfter.filter((v) => v.startsWith('first-'))).toEqual([]);
    expect(seenAfter.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `second-${i}`).sort());

    // The stored records themselves survived too.
    const reader = kafka.consumer({ groupId: randomName('g'), maxWaitTimeInMs: 100 });
    let all = 0;
    await reader.connect();
    await reader.subscribe({ topic, fromBeginning: true });
    await reader.run({
      eachMessage: () => {
        all++;
        return Promise.resolve();
      },
    });
    await waitFor(() => all === 150, 'all 150 stored messages');
    await reader.disconnect();
  });

  it('retention by size advances the log start offset; fetching below it is out of range', async () => {
    const dataDir = tempDir();
    const broker = await start(dataDir, 0, { segmentBytes: 2048, retentionBytes: 4096 });
    const kafka = kafkaClient(broker.brokers);
    const topic = randomName('retained');
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const producer = kafka.producer();
    await producer.connect();
    for (let i = 0; i < 40; i++) {
      await producer.send({ topic, messages: [{ value: `${i}:`.padEnd(300, 'x') }] });
    }
    await producer.disconnect();
    const [offsets] = await admin.fetchTopicOffsets(topic);
    expect(Number(offsets?.high)).toBe(40);
    const low = Number(offsets?.low);
    expect(low).toBeGreaterThan(0);
    const segmentFiles = readdirSync(join(dataDir, 'topics', topic, '0')).filter((f) =>
      f.endsWith('.log'),
    );
    expect(segmentFiles.length).toBeLessThanOrEqual(4);

    // A group whose committed offset fell behind the log start restarts from the earliest kept.
    const groupId = randomName('g');
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '0' }] });
    await admin.disconnect();
    const { consumer, items: seen } = await collectMessages(kafka, topic, {
      groupId,
      format: (message) => Number(message.offset),
    });
    await waitFor(() => seen.includes(39), 'the last message');
    await consumer.disconnect();
    expect(seen[0]).toBe(low);
  });
});
