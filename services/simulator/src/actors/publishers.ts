import type { KafkaClient } from '@candlestream/kafka';
import { KafkaPublisher } from '@candlestream/kafka';

/**
 * One producer per hosted session. kafkajs keeps every topic a producer ever sent to in its
 * metadata requests, and once such a topic is deleted every later send of that producer fails
 * with "This server does not host this topic-partition" (kafkajs#1622, open): a shared producer
 * would be broken by the first idle session removed. A session's producer goes before its topic.
 */
export class SessionPublishers {
  readonly #kafka: KafkaClient;
  readonly #byTopic = new Map<string, KafkaPublisher>();

  constructor(kafka: KafkaClient) {
    this.#kafka = kafka;
  }

  /** The connected producer of `topic`'s session, made on first use. */
  async open(topic: string): Promise<KafkaPublisher> {
    let publisher = this.#byTopic.get(topic);
    if (!publisher) this.#byTopic.set(topic, (publisher = new KafkaPublisher(this.#kafka)));
    await publisher.connect();
    return publisher;
  }

  get(topic: string): KafkaPublisher | undefined {
    return this.#byTopic.get(topic);
  }

  async close(topic: string): Promise<void> {
    const publisher = this.#byTopic.get(topic);
    this.#byTopic.delete(topic);
    await publisher?.disconnect();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#byTopic.keys()].map((topic) => this.close(topic)));
  }
}
