import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';

export interface ConsumedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** The record timestamp, epoch ms (the producer's publication time by default). */
  timestamp: number;
}

export interface ConsumedBatch {
  topic: string;
  partition: number;
  messages: ConsumedMessage[];
  /** The partition's end offset when fetched: lag = highWatermark - (last offset + 1). */
  highWatermark?: string;
}

export interface BatchContext {
  /** Keeps the group membership alive during a long write or a retry wait. */
  heartbeat: () => Promise<void>;
  /** Aborted when the consumer stops; a handler waiting on retries gives up. */
  signal: AbortSignal;
}

/**
 * Handles one batch (one partition). Resolving commits the batch; throwing leaves it uncommitted
 * and stops the consumer (the owner restarts it, and the batch is delivered again).
 */
export type BatchHandler = (batch: ConsumedBatch, context: BatchContext) => Promise<void>;

export interface BatchConsumerOptions {
  groupId: string;
  topics: string[];
  /** Where a new group starts: the earliest retained record (true) or only new ones. */
  fromBeginning?: boolean;
  /** Upper bound of one partition's batch, in bytes. */
  maxBytesPerPartition?: number;
  /** How long a fetch waits for data; bounds the latency of a quiet topic. */
  maxWaitTimeMs?: number;
  sessionTimeoutMs?: number;
  /**
   * Batches of different partitions handled at once (kafkajs partitionsConsumedConcurrently);
   * one partition's batches always come one after the other. Default 1.
   */
  partitionsInFlight?: number;
  /** Called when the consumer has crashed (handler threw, or kafkajs gave up). */
  onCrash?: (error: unknown) => void;
}

type RawHeaderValue = Buffer | string | (Buffer | string)[] | undefined;

/** Header values as text; a repeated header keeps its last value. */
export function headersOf(raw: Record<string, RawHeaderValue> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) out[name] = last.toString();
  }
  return out;
}

/** A record kafkajs fetched, as the platform hands it on. */
export function consumedMessage(
  topic: string,
  partition: number,
  m: KafkaMessage,
): ConsumedMessage {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key ?? null,
    value: m.value ?? null,
    headers: headersOf(m.headers),
    timestamp: Number(m.timestamp),
  };
}

/**
 * How long the group waits for a silent member before handing its partitions to the others: a
 * killed consumer's partitions are idle this long. Kafka's own default is 45 s; 10 s keeps a
 * restart quick while heartbeats (every 3 s) still tolerate a long pause.
 */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;

/**
 * A group consumer that hands whole batches to one handler and commits a partition's offsets only
 * after the handler resolved: at-least-once, so the handler's writes must be idempotent.
 */
export class BatchConsumer {
  readonly #consumer: Consumer;
  readonly #options: BatchConsumerOptions;
  readonly #abort = new AbortController();
  #stopped: Promise<void> | undefined;

  constructor(kafka: Kafka, options: BatchConsumerOptions) {
    this.#options = options;
    this.#consumer = kafka.consumer({
      groupId: options.groupId,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1_048_576,
      maxWaitTimeInMs: options.maxWaitTimeMs ?? 100,
      sessionTimeout: options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS,
      allowAutoTopicCreation: false,
      // A crash is reported to the owner, which decides whether and when to start again.
      retry: {
        retries: 5,
        initialRetryTime: 200,
        maxRetryTime: 3_000,
        restartOnFailure: () => Promise.resolve(false),
      },
    });
    this.#consumer.on(this.#consumer.events.CRASH, (event) => {
      this.#options.onCrash?.(event.payload.error);
    });
  }

  async start(handler: BatchHandler): Promise<void> {
    await this.#consumer.connect();
    await this.#consumer.subscribe({
      topics: this.#options.topics,
      fromBeginning: this.#options.fromBeginning ?? true,
    });
    const signal = this.#abort.signal;
    await this.#consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#options.partitionsInFlight ?? 1,
      eachBatch: async (payload) => {
        const { batch } = payload;
        if (batch.messages.length === 0 || !payload.isRunning() || payload.isStale()) return;
        const heartbeat = (): Promise<void> => payload.heartbeat();
        const messages = batch.messages.map((m) =>
          consumedMessage(batch.topic, batch.partition, m),
        );
        await handler(
          {
            topic: batch.topic,
            partition: batch.partition,
            messages,
            highWatermark: batch.highWatermark,
          },
          { heartbeat, signal },
        );
        // The partition may have moved to another member while the handler ran; its next owner
        // will deliver the batch again, which idempotent writes make harmless.
        if (signal.aborted) return;
        const last = batch.lastOffset();
        payload.resolveOffset(last);
        await this.#consumer.commitOffsets([
          {
            topic: batch.topic,
            partition: batch.partition,
            offset: (BigInt(last) + 1n).toString(),
          },
        ]);
      },
    });
  }

  /** Leaves the group; whatever was not committed is delivered again. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#abort.abort(new Error('consumer stopping'));
      await this.#consumer.disconnect();
    })();
    return this.#stopped;
  }
}
