import { AppError } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { needServices, uniqueName } from '@candlestream/testkit';
import { describe, expect, it } from 'vitest';
import { createKafka, type KafkaClient } from './client.js';
import { readTopicTail } from './tail.js';

const services = needServices(['kafka']);

function kafka(): KafkaClient {
  return createKafka({
    brokers: services.get('kafka').url.split(','),
    clientId: uniqueName('tail'),
    logger: silentLogger(),
  });
}

/** A topic of `counts.length` partitions holding `counts[p]` records `p:i` in partition p. */
async function topicWith(client: KafkaClient, counts: number[]): Promise<string> {
  const topic = uniqueName('tail');
  const admin = client.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: counts.length }],
    });
  } finally {
    await admin.disconnect();
  }
  const producer = client.producer();
  await producer.connect();
  try {
    for (const [partition, count] of counts.entries()) {
      if (count === 0) continue;
      await producer.send({
        topic,
        messages: Array.from({ length: count }, (_, i) => ({
          partition,
          key: `k${partition}`,
          value: `${partition}:${i}`,
        })),
      });
    }
  } finally {
    await producer.disconnect();
  }
  return topic;
}

describe.skipIf(services.skip)('readTopicTail', () => {
  it('returns the newest records of each non-empty partition, in partition and offset order', async () => {
    const client = kafka();
    const topic = await topicWith(client, [10, 2, 0]);
    const tail = await readTopicTail(client, topic, { perPartition: 3, timeoutMs: 20_000 });
    expect(tail.map((m) => [m.partition, m.offset, String(m.value), String(m.key)])).toEqual([
      [0, '7', '0:7', 'k0'],
      [0, '8', '0:8', 'k0'],
      [0, '9', '0:9', 'k0'],
      [1, '0', '1:0', 'k1'],
      [1, '1', '1:1', 'k1'],
    ]);
  });

  it('answers an empty topic with no records, without joining a group', async () => {
    const client = kafka();
    const topic = await topicWith(client, [0, 0]);
    expect(await readTopicTail(client, topic, { perPartition: 5, timeoutMs: 20_000 })).toEqual([]);
    const admin = client.admin();
    await admin.connect();
    try {
      const { groups } = await admin.listGroups();
      expect(groups.filter((g) => g.groupId.startsWith(`tail-${topic}-`))).toEqual([]);
    } finally {
      await admin.disconnect();
    }
  });

  it('leaves its throwaway group with no members and nothing committed', async () => {
    const client = kafka();
    const topic = await topicWith(client, [4]);
    await readTopicTail(client, topic, { perPartition: 2, timeoutMs: 20_000 });
    const admin = client.admin();
    await admin.connect();
    try {
      const groupIds = (await admin.listGroups()).groups
        .map((g) => g.groupId)
        .filter((id) => id.startsWith(`tail-${topic}-`));
      expect(groupIds).toHaveLength(1);
      const { groups } = await admin.describeGroups(groupIds);
      expect(groups[0]?.members).toEqual([]);
      const [offsets] = await admin.fetchOffsets({ groupId: groupIds[0]!, topics: [topic] });
      expect(offsets?.partitions.map((p) => p.offset)).toEqual(['-1']);
    } finally {
      await admin.disconnect();
    }
  });

  it('rejects with a retriable TIMEOUT when the read takes too long', async () => {
    const client = kafka();
    const topic = await topicWith(client, [3]);
    const read = readTopicTail(client, topic, { perPartition: 3, timeoutMs: 1 });
    await expect(read).rejects.toSatisfy((err) => AppError.is(err, 'TIMEOUT') && err.retriable);
  });
});
