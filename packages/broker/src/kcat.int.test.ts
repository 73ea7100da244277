import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_CI, KCAT_BIN } from './config.js';
import { startBroker, type RunningBroker } from './index.js';
import {
  collectMessages,
  kafkaClient,
  kcatFound,
  randomName,
  kcatConsumeAll,
  runKcat,
  waitFor,
} from './testing.js';

/**
 * librdkafka compatibility through Debian's `kcat` (package `kcat`). The test installs nothing:
 * without kcat it is skipped locally and fails under CI=true, so CI cannot pass without it.
 */
const label = kcatFound
  ? 'librdkafka clients (kcat)'
  : `librdkafka clients (kcat): SKIPPED, ${KCAT_BIN} not found; install it with apt-get install -y kcat`;

// Under CI a missing kcat is a failure, not a skip.
it.runIf(!kcatFound && IS_CI)('kcat is installed (CI=true requires it)', () => {
  throw new Error(`CI=true and ${KCAT_BIN} is missing: the CI image must apt-get install -y kcat`);
});

describe.skipIf(!kcatFound)(label, () => {
  let broker: RunningBroker;

  beforeAll(async () => {
    if (!kcatFound)
      throw new Error(
        `CI=true and ${KCAT_BIN} is missing: the CI image must apt-get install -y kcat`,
      );
    broker = await startBroker({ port: 0 });
  });
  afterAll(async () => {
    await broker?.stop();
  });

  async function createTopic(partitions: number): Promise<string> {
    const topic = randomName('kcat');
    const admin = kafkaClient(broker.brokers).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] });
    await admin.disconnect();
    return topic;
  }

  it('kcat produces; kafkajs reads keys and values back', async () => {
    const topic = await createTopic(2);
    const lines = Array.from({ length: 20 }, (_, i) => `key${i % 4}:value-${i}`);
    const result = await runKcat(
      ['-b', broker.brokers, '-P', '-t', topic, '-K:'],
      lines.join('\n') + '\n',
    );
    expect(result.code, result.stderr).toBe(0);

    const { consumer, items: got } = await collectMessages(kafkaClient(broker.brokers), topic, {
      format: (message) => `${String(message.key)}:${String(message.value)}`,
    });
    await waitFor(() => got.length === 20, 'the 20 kcat messages');
    await consumer.disconnect();
    expect(got.sort()).toEqual([...lines].sort());
  });

  it('kcat consumes what kafkajs produced, in order per partition', async () => {
    const topic = await createTopic(1);
    const producer = kafkaClient(broker.brokers).producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })),
    });
    await producer.disconnect();
    const result = await kcatConsumeAll(broker.brokers, topic, '%o %k=%s');
    expect(result.code, result.stderr).toBe(0);
    expect(result.lines).toEqual(Array.from({ length: 30 }, (_, i) => `${i} k${i}=v${i}`));
  });

  it('kcat -G joins a consumer group, reads everything and commits its offsets', async () => {
    const topic = await createTopic(3);
    const groupId = randomName('kcat-group');
    const producer = kafkaClient(broker.brokers).producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })),
    });
    await producer.disconnect();
    const result = await runKcat([
      '-b',
      broker.brokers,
      '-G',
      groupId,
      '-X',
      'auto.offset.reset=earliest',
      '-e',
      '-q',
      '-f',
      '%s\\n',
      topic,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n').sort()).toEqual(
      Array.from({ length: 60 }, (_, i) => `v${i}`).sort(),
    );

    const admin = kafkaClient(broker.brokers).admin();
    await admin.connect();
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    expect(committed[0]?.partitions.reduce((sum, p) => sum + Number(p.offset), 0)).toBe(60);
    await admin.disconnect();
  });
});
