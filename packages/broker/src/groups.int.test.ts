import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Consumer, Kafka } from 'kafkajs';
import { startBroker, type RunningBroker } from './index.js';
import { Writer } from './protocol/writer.js';
import { kafkaClient, RawClient, randomName, waitFor } from './testing.js';

let broker: RunningBroker;

beforeAll(async () => {
  broker = await startBroker({ port: 0, groupMinSessionTimeoutMs: GHOST_SESSION_TIMEOUT_MS });
});
afterAll(async () => {
  await broker.stop();
});

const PARTITIONS = 6;
/** Short so the expulsion test is quick; the broker's minimum is lowered to allow it. */
const GHOST_SESSION_TIMEOUT_MS = 1500;

async function produceNumbered(
  kafka: Kafka,
  topic: string,
  from: number,
  count: number,
): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  const messages = Array.from({ length: count }, (_, i) => ({
    key: `k${from + i}`,
    value: String(from + i),
  }));
  await producer.send({ topic, messages });
  await producer.disconnect();
}

describe('consumer groups', () => {
  it('three consumers share six partitions, rebalance when one leaves, and lose or duplicate nothing', async () => {
    const kafka = kafkaClient(broker.brokers);
    const admin = kafka.admin();
    await admin.connect();
    const topic = randomName('group');
    const groupId = randomName('g');
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] });
    await produceNumbered(kafka, topic, 0, 600);

    const received = new Map<number, number>();
    const assignments = new Map<Consumer, number[]>();
    const consumers: Consumer[] = [];
    for (let c = 0; c < 3; c++) {
      const consumer = kafka.consumer({
        groupId,
        maxWaitTimeInMs: 100,
        heartbeatInterval: 500,
        sessionTimeout: 10_000,
      });
      consumer.on(consumer.events.GROUP_JOIN, (event) => {
        assignments.set(consumer, event.payload.memberAssignment[topic] ?? []);
      });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message }) => {
          const n = Number(String(message.value));
          received.set(n, (received.get(n) ?? 0) + 1);
          return Promise.resolve();
        },
      });
      consumers.push(consumer);
    }
    // One generation where all three hold two partitions each.
    await waitFor(
      () => assignments.size === 3 && [...assignments.values()].every((a) => a.length === 2),
      'three members with two partitions each',
    );
    await waitFor(() => received.size === 600, 'first 600 messages');
    // Offsets are committed by kafkajs after each batch; wait until all of them are.
    await waitFor(async () => {
      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      const sum = committed[0]?.partitions.reduce((s, p) => s + Number(p.offset), 0) ?? 0;
      return sum === 600;
    }, 'commits of the first 600');

    const leaving = consumers.pop() as Consumer;
    assignments.delete(leaving);
    await leaving.disconnect();
    await waitFor(
      () =>
        [...assignments.values()].reduce((s, a) => s + a.length, 0) === PARTITIONS &&
        [...assignments.values()].every((a) => a.length === 3),
      'the two remaining members to take three partitions each',
    );
    const described = await admin.describeGroups([groupId]);
    expect(described.groups[0]?.members).toHaveLength(2);
    expect(described.groups[0]?.state).toBe('Stable');

    await produceNumbered(kafka, topic, 600, 600);
    await waitFor(() => received.size === 1200, 'all 1200 messages');
    await Promise.all(consumers.map((c) => c.disconnect()));

    expect([...received.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 1200 }, (_, i) => i),
    );
    expect([...received.values()].filter((count) => count !== 1)).toEqual([]);
    expect((await admin.listGroups()).groups.map((g) => g.groupId)).toContain(groupId);
    await admin.disconnect();
  });

  it('a member that stops heartbeating is expelled after its session timeout', async () => {
    const kafka = kafkaClient(broker.brokers);
    const admin = kafka.admin();
    await admin.connect();
    const topic = randomName('session');
    const groupId = randomName('g');
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
    const survivor = kafka.consumer({
      groupId,
      maxWaitTimeInMs: 100,
      heartbeatInterval: 300,
      sessionTimeout: 6000,
    });
    let survivorPartitions: number[] = [];
    survivor.on(survivor.events.GROUP_JOIN, (e) => {
      survivorPartitions = e.payload.memberAssignment[topic] ?? [];
    });
    await survivor.connect();
    await survivor.subscribe({ topic });
    await survivor.run({ eachMessage: () => Promise.resolve() });
    await waitFor(() => survivorPartitions.length === 2, 'the first member to own both partitions');

    // A second member joins through the raw protocol, takes part in the rebalance and then goes
    // silent without LeaveGroup, as a frozen or killed process would.
    const ghost = await RawClient.connect(broker.brokers);
    const subscription = new Writer()
      .int16(0)
      .array([topic], (w, t) => w.string(t))
      .bytes(Buffer.alloc(0))
      .toBuffer();
    const join = new Writer()
      .string(groupId)
      .int32(GHOST_SESSION_TIMEOUT_MS)
      .int32(10_000)
      .string('')
      .string(null)
      .string('consumer')
      .array(['RoundRobinAssigner'], (w, name) => w.string(name).bytes(subscription))
      .toBuffer();
    const joined = await ghost.request(11, 5, join);
    joined.int32(); // throttle
    expect(joined.int16()).toBe(0);
    await waitFor(() => survivorPartitions.length === 1, 'the partitions to be split');
    const describeMembers = async (): Promise<number> =>
      (await admin.describeGroups([groupId])).groups[0]?.members.length ?? 0;
    expect(await describeMembers()).toBe(2);
    await waitFor(
      () => survivorPartitions.length === 2,
      'the survivor to get both partitions back',
      30_000,
    );
    expect(await describeMembers()).toBe(1);
    ghost.close();
    await survivor.disconnect();
    await admin.disconnect();
  }, 60_000);
});
