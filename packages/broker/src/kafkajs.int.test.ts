import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import kafkajs from 'kafkajs';
import { startBroker, type RunningBroker } from './index.js';
import { collectMessages, kafkaClient, randomName, waitFor } from './testing.js';

const { CompressionTypes } = kafkajs;

let broker: RunningBroker;

beforeAll(async () => {
  broker = await startBroker({ port: 0 });
});
afterAll(async () => {
  await broker.stop();
});

async function createTopic(name: string, numPartitions: number): Promise<void> {
  const admin = kafkaClient(broker.brokers).admin();
  await admin.connect();
  try {
    expect(await admin.createTopics({ topics: [{ topic: name, numPartitions }] })).toBe(true);
  } finally {
    await admin.disconnect();
  }
}

describe('kafkajs against the broker', () => {
  it('produces and consumes in order per partition', async () => {
    const topic = randomName('orders');
    await createTopic(topic, 3);
    const kafka = kafkaClient(broker.brokers);
    const producer = kafka.producer();
    await producer.connect();
    const sent = Array.from({ length: 300 }, (_, i) => ({
      key: `k${i % 7}`,
      value: JSON.stringify({ i }),
    }));
    for (let i = 0; i < sent.length; i += 50)
      await producer.send({ topic, messages: sent.slice(i, i + 50) });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: randomName('g'), maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen = new Map<number, { offset: number; i: number; key: string }[]>();
    let total = 0;
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const list = seen.get(partition) ?? [];
        list.push({
          offset: Number(message.offset),
          i: (JSON.parse(String(message.value)) as { i: number }).i,
          key: String(message.key),
        });
        seen.set(partition, list);
        total++;
        return Promise.resolve();
      },
    });
    await waitFor(() => total >= sent.length, 'all messages consumed');
    await consumer.disconnect();

    expect(total).toBe(sent.length);
    for (const list of seen.values()) {
      // Offsets dense from 0 and the producer's order kept within a partition.
      expect(list.map((m) => m.offset)).toEqual(list.map((_, idx) => idx));
      expect([...list.map((m) => m.i)].sort((a, b) => a - b)).toEqual(list.map((m) => m.i));
    }
    // The same key always lands in the same partition.
    const partitionOfKey = new Map<string, number>();
    for (const [partition, list] of seen) {
      for (const m of list) {
        expect(partitionOfKey.get(m.key) ?? partition).toBe(partition);
        partitionOfKey.set(m.key, partition);
      }
    }
  });

  it('accepts acks=0 and gzip batches', async () => {
    const topic = randomName('acks0');
    await createTopic(topic, 1);
    const kafka = kafkaClient(broker.brokers);
    const producer = kafka.producer();
    await producer.connect();
    const noAck = await producer.send({
      topic,
      acks: 0,
      messages: [{ value: 'fire-and-forget-1' }, { value: 'fire-and-forget-2' }],
    });
    // acks=0: the broker sends no response, so kafkajs reports no offsets.
    expect(noAck).toEqual([]);
    const gz = await producer.send({
      topic,
      compression: CompressionTypes.GZIP,
      messages: Array.from({ length: 20 }, (_, i) => ({ value: `gzipped-${i}`.repeat(10) })),
    });
    expect(gz[0]?.errorCode).toBe(0);
    await producer.disconnect();

    const { consumer, items: values } = await collectMessages(kafka, topic);
    await waitFor(() => values.length >= 22, 'acks=0 and gzip messages');
    await consumer.disconnect();
    expect(values.slice(0, 2)).toEqual(['fire-and-forget-1', 'fire-and-forget-2']);
    expect(values.slice(2)).toEqual(
      Array.from({ length: 20 }, (_, i) => `gzipped-${i}`.repeat(10)),
    );
  });

  it('finds offsets by timestamp and seeks', async () => {
    const topic = randomName('ts');
    await createTopic(topic, 1);
    const kafka = kafkaClient(broker.brokers);
    const producer = kafka.producer();
    await producer.connect();
    const base = 1_700_000_000_000;
    await producer.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({
        value: `m${i}`,
        timestamp: String(base + i * 1000),
      })),
    });
    await producer.disconnect();

    const admin = kafka.admin();
    await admin.connect();
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, base + 4500)).toEqual([
      { partition: 0, offset: '5' },
    ]);
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, base)).toEqual([
      { partition: 0, offset: '0' },
    ]);
    // Later than every record: kafkajs falls back to the high watermark.
    expect(await admin.fetchTopicOffsetsByTimestamp(topic, base + 60_000)).toEqual([
      { partition: 0, offset: '10' },
    ]);
    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets[0]).toMatchObject({ partition: 0, offset: '10', low: '0', high: '10' });
    await admin.disconnect();

    const { consumer, items: values } = await collectMessages(kafka, topic);
    consumer.seek({ topic, partition: 0, offset: '7' });
    await waitFor(() => values.includes('m9'), 'messages after the seek');
    await consumer.disconnect();
    expect(values[0]).toBe('m7');
    expect(values).toEqual(['m7', 'm8', 'm9']);
  });

  it('creates, lists and deletes topics', async () => {
    const kafka = kafkaClient(broker.brokers);
    const admin = kafka.admin();
    await admin.connect();
    const a = randomName('adm');
    const b = randomName('adm');
    expect(
      await admin.createTopics({ topics: [{ topic: a, numPartitions: 2 }, { topic: b }] }),
    ).toBe(true);
    // Creating it again is not an error for kafkajs (TOPIC_ALREADY_EXISTS answers false).
    expect(await admin.createTopics({ topics: [{ topic: a }] })).toBe(false);
    expect(await admin.listTopics()).toEqual(expect.arrayContaining([a, b]));
    const meta = await admin.fetchTopicMetadata({ topics: [a] });
    expect(meta.topics[0]?.partitions).toHaveLength(2);
    await admin.createPartitions({ topicPartitions: [{ topic: a, count: 4 }] });
    expect((await admin.fetchTopicMetadata({ topics: [a] })).topics[0]?.partitions).toHaveLength(4);
    const configs = await admin.describeConfigs({
      resources: [{ type: 2, name: a }],
      includeSynonyms: false,
    });
    expect(configs.resources[0]?.configEntries.map((e) => e.configName)).toContain('retention.ms');
    await admin.deleteTopics({ topics: [a, b] });
    const after = await admin.listTopics();
    expect(after).not.toContain(a);
    expect(after).not.toContain(b);
    await admin.disconnect();
  });

  it('does not auto-create topics: an unknown topic stays unknown', async () => {
    const kafka = kafkaClient(broker.brokers, { retry: { retries: 1, initialRetryTime: 50 } });
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    const topic = randomName('missing');
    await expect(producer.send({ topic, messages: [{ value: 'x' }] })).rejects.toThrow();
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    expect(await admin.listTopics()).not.toContain(topic);
    await admin.disconnect();
  });
});
