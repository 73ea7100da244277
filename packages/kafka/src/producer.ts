import type { Kafka, Producer } from 'kafkajs';
import { defaultPartitioner } from './client.js';

export interface OutgoingMessage {
  key: string | null;
  value: string | Buffer;
  headers?: Record<string, string>;
  /** Epoch ms; the broker's record timestamp. Default: now. */
  timestamp?: number;
}

/** acks=all: a send resolves only once every in-sync replica has the records. */
const ACKS_ALL = -1;

/** One kafkajs producer behind a narrow interface (kafkajs is in maintenance mode; stay replaceable). */
export class KafkaPublisher {
  readonly #producer: Producer;
  #connected = false;

  constructor(kafka: Kafka) {
    this.#producer = kafka.producer({
      createPartitioner: defaultPartitioner,
      allowAutoTopicCreation: false,
      // Retries here are per request; the services own the longer backoff.
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
  }

  async connect(): Promise<void> {
    await this.#producer.connect();
    this.#connected = true;
  }

  async send(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await this.#producer.send({
      topic,
      acks: ACKS_ALL,
      messages: messages.map((m) => ({
        key: m.key,
        value: m.value,
        ...(m.headers ? { headers: m.headers } : {}),
        ...(m.timestamp === undefined ? {} : { timestamp: String(m.timestamp) }),
      })),
    });
  }

  /** Idempotent. */
  async disconnect(): Promise<void> {
    if (!this.#connected) return;
    this.#connected = false;
    await this.#producer.disconnect();
  }
}
