import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { uniqueName } from './resources.js';
import { needServices } from './services.js';

const services = needServices(['kafka']);

describe.skipIf(services.skip)('the resolved Kafka service', () => {
  it('takes a topic created by admin and hands back what was produced', async () => {
    const kafka = new Kafka({
      brokers: services.get('kafka').url.split(','),
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: uniqueName('testkit') });
    const topic = uniqueName('testkit');
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
      await producer.connect();
      await producer.send({ topic, messages: [{ key: 'BTC-USD', value: 'hello' }] });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const value = await new Promise<string>((resolve) => {
        void consumer.run({
          eachMessage: ({ message }) => Promise.resolve(resolve(String(message.value))),
        });
      });
      expect(value).toBe('hello');
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
