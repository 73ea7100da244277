import { kcatConsumeAll, kcatFound, runKcat } from '@candlestream/broker/kcat';
import { silentLogger } from '@candlestream/logger';
import { needPrerequisite, needServices, uniqueName, waitUntil } from '@candlestream/testkit';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { createKafka, type KafkaClient } from './client.js';

/**
 * Compressed batches between librdkafka (kcat) and our kafkajs clients, every codec both ways.
 * kafkajs alone reads only gzip: a consumer of ours used to fail on the first snappy, lz4 or
 * zstd batch another producer sent.
 */
const { CompressionTypes } = kafkajs;
const services = needServices(['kafka']);
const skipKcat = needPrerequisite(kcatFound ? undefined : 'kcat (apt-get install -y kcat)');

const CODECS = [
  ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4],
  ['zstd', CompressionTypes.ZSTD],
] as const;

function kafka(): KafkaClient {
  return createKafka({
    brokers: services.get('kafka').url.split(','),
    clientId: uniqueName('codecs'),
    logger: silentLogger(),
  });
}

async function createTopic(client: KafkaClient): Promise<string> {
  const topic = uniqueName('codecs');
  const admin = client.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  await admin.disconnect();
  return topic;
}

/** Values of partition 0 in offset order, read by a kafkajs consumer of ours. */
async function consumeAll(client: KafkaClient, topic: string, count: number): Promise<string[]> {
  const seen: string[] = [];
  const consumer = client.consumer({ groupId: uniqueName('codecs'), maxWaitTimeInMs: 100 });
  const errors: unknown[] = [];
  consumer.on(consumer.events.CRASH, (event) => errors.push(event.payload.error));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        seen.push(String(message.value));
        return Promise.resolve();
      },
    });
    await waitUntil(
      `${count} messages or a crash`,
      () => seen.length >= count || errors.length > 0,
      20_000,
    );
  } finally {
    await consumer.disconnect();
  }
  expect(errors).toEqual([]);
  return seen;
}

const lines = Array.from(
  { length: 300 },
  (_, i) => `{"symbol":"BTC-USD","seq":${i},"price":"6400${i % 10}.5"}`,
);

describe.skipIf(services.skip)('compressed batches through our kafkajs client', () => {
  it.each(CODECS)('kafkajs produces %s; our consumer reads it back', async (_, compression) => {
    const client = kafka();
    const topic = await createTopic(client);
    const producer = client.producer();
    await producer.connect();
    await producer.send({ topic, compression, messages: lines.map((value) => ({ value })) });
    await producer.disconnect();
    expect(await consumeAll(client, topic, lines.length)).toEqual(lines);
  });

  describe.skipIf(skipKcat)('with librdkafka (kcat)', () => {
    it.each(CODECS)('kcat -z %s produces; our kafkajs consumer reads it', async (codec) => {
      const client = kafka();
      const topic = await createTopic(client);
      const brokers = services.get('kafka').url;
      const produced = await runKcat(
        ['-b', brokers, '-P', '-t', topic, '-z', codec, '-X', 'acks=all', '-X', 'linger.ms=50'],
        lines.join('\n') + '\n',
      );
      expect(produced.code, produced.stderr).toBe(0);
      expect(await consumeAll(client, topic, lines.length)).toEqual(lines);
    });

    it.each(CODECS)('kafkajs produces %s; kcat reads it', async (_, compression) => {
      const client = kafka();
      const topic = await createTopic(client);
      const producer = client.producer();
      await producer.connect();
      await producer.send({ topic, compression, messages: lines.map((value) => ({ value })) });
      await producer.disconnect();
      const consumed = await kcatConsumeAll(services.get('kafka').url, topic, '%s');
      expect(consumed.code, consumed.stderr).toBe(0);
      expect(consumed.lines).toEqual(lines);
    });
  });
});
