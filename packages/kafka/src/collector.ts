import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { ConsumedMessage } from './consumer.js';
import { BatchConsumer } from './consumer.js';

export interface TopicCollectorOptions {
  /** Read what the topic already holds (true), or only what arrives after `start`. */
  fromBeginning?: boolean;
  /** How long a fetch waits for data; lower it to see a quiet topic's messages sooner. */
  maxWaitTimeMs?: number;
}

/**
 * Every message of one topic, kept in arrival order, as a throwaway group of its own reads it:
 * what tests (and tools) use to see what a service published.
 */
export class TopicCollector {
  readonly messages: ConsumedMessage[] = [];
  readonly #consumer: BatchConsumer;

  constructor(kafka: Kafka, topic: string, options: TopicCollectorOptions = {}) {
    this.#consumer = new BatchConsumer(kafka, {
      groupId: `collect-${randomUUID()}`,
      topics: [topic],
      ...options,
    });
  }

  start(): Promise<void> {
    return this.#consumer.start((batch) => {
      this.messages.push(...batch.messages);
      return Promise.resolve();
    });
  }

  stop(): Promise<void> {
    return this.#consumer.stop();
  }
}
