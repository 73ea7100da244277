import { AppError } from '@candlestream/core';
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

/**
 * Largest produce request we send, in bytes of estimated record batch. Kafka's `message.max.bytes`
 * (the limit on one record batch) and Redpanda's `kafka_batch_max_bytes` default to about 1 MiB
 * (1,048,588 bytes in Kafka and in packages/broker, `DEFAULT_MAX_MESSAGE_BYTES`), and the Java
 * producer's `max.request.size` to 1 MiB; this stays under all of them with room for the request's
 * own framing. A batch over the broker's limit is refused with MESSAGE_TOO_LARGE, which no retry
 * can fix, so every send is split to fit first.
 */
export const MAX_PRODUCE_REQUEST_BYTES = 1_000_000;

/** Record batch header (v2: base offset .. record count), Kafka protocol guide "RecordBatch". */
const RECORD_BATCH_OVERHEAD_BYTES = 61;
/** One record's fixed part at worst: length, attributes, timestamp and offset deltas, key and value lengths, header count (varints at their widest). */
const RECORD_OVERHEAD_BYTES = 41;
/** One header's two length varints at their widest. */
const HEADER_OVERHEAD_BYTES = 10;

function byteLength(value: string | Buffer | null): number {
  if (value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/** An upper bound of the bytes `message` adds to a record batch (uncompressed, as we send). */
export function recordBytes(message: OutgoingMessage): number {
  let bytes = RECORD_OVERHEAD_BYTES + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    bytes += HEADER_OVERHEAD_BYTES + Buffer.byteLength(name) + Buffer.byteLength(value);
  }
  return bytes;
}

/** The bytes of a record batch holding just `message`: what must fit the broker's limit. */
export function singleRecordBatchBytes(message: OutgoingMessage): number {
  return RECORD_BATCH_OVERHEAD_BYTES + recordBytes(message);
}

/**
 * `messages` in order, cut into runs whose record batch stays within `maxBytes` (a run's whole
 * size bounds each partition's batch in it) and that hold at most `maxMessages`. A message too
 * large on its own gets a run of its own; sending it fails with a non-retriable error instead of
 * taking the others down with it.
 */
export function splitForProduce<M extends OutgoingMessage>(
  messages: readonly M[],
  maxBytes: number = MAX_PRODUCE_REQUEST_BYTES,
  maxMessages: number = Number.POSITIVE_INFINITY,
): M[][] {
  const runs: M[][] = [];
  let run: M[] = [];
  let bytes = RECORD_BATCH_OVERHEAD_BYTES;
  for (const message of messages) {
    const size = recordBytes(message);
    if (run.length > 0 && (bytes + size > maxBytes || run.length >= maxMessages)) {
      runs.push(run);
      run = [];
      bytes = RECORD_BATCH_OVERHEAD_BYTES;
    }
    run.push(message);
    bytes += size;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * Messages per producer.send. kafkajs groups a send's messages by partition by copying the
 * partition's array for every message (quadratic: a 2,000-trade send spent a tenth of the
 * producer's CPU there), so a send holds at most this many (splitForProduce's maxMessages).
 */
export const MESSAGES_PER_SEND = 250;
/** Keyed partitions remembered by the caching partitioner before it starts over. */
const MAX_CACHED_KEYS = 10_000;

/**
 * kafkajs's default (Java-compatible murmur2) partitioner, remembering each key's partition: a
 * keyed message's partition depends only on its key and the partition count, and hashing the
 * same few symbols for every trade cost more than a lookup. Unkeyed messages go to it as before.
 */
export function cachingPartitioner(): ReturnType<typeof defaultPartitioner> {
  const inner = defaultPartitioner();
  const known = new Map<string, number>();
  return (args) => {
    const { key, partition } = args.message;
    if (typeof key !== 'string' || (partition !== undefined && partition !== null)) {
      return inner(args);
    }
    const id = `${args.topic}\u0000${args.partitionMetadata.length}\u0000${key}`;
    let chosen = known.get(id);
    if (chosen === undefined) {
      chosen = inner(args);
      if (known.size >= MAX_CACHED_KEYS) known.clear();
      known.set(id, chosen);
    }
    return chosen;
  };
}

/** Detail key of the AppError a send throws when the broker refused the records for good. */
const REFUSED_DETAIL = 'kafkaRefused';

/**
 * The innermost Kafka protocol error in a kafkajs error's cause chain. kafkajs wraps the broker's
 * answer (`KafkaJSProtocolError`, with `type` and its own `retriable` from the protocol's error
 * table) in `KafkaJSNonRetriableError`/`KafkaJSNumberOfRetriesExceeded`, whose `retriable` is
 * false even for a connection that ran out of retries, so only the protocol error can tell.
 */
function protocolError(err: unknown): { type: string; retriable: boolean } | undefined {
  let found: { type: string; retriable: boolean } | undefined;
  const seen = new Set<unknown>();
  for (let e = err; e && typeof e === 'object' && !seen.has(e);) {
    seen.add(e);
    const { type, retriable, cause } = e as {
      type?: unknown;
      retriable?: unknown;
      cause?: unknown;
    };
    if (typeof type === 'string' && typeof retriable === 'boolean') found = { type, retriable };
    e = cause;
  }
  return found;
}

/** Whether a send failed because the broker refused the records themselves (never retry). */
export function isRefusedByBroker(err: unknown): boolean {
  return AppError.is(err) && err.details?.[REFUSED_DETAIL] !== undefined;
}

function refused(type: string, message: string, cause?: unknown): AppError {
  return new AppError('INVALID_ARGUMENT', message, {
    retriable: false,
    ...(cause === undefined ? {} : { cause }),
    details: { [REFUSED_DETAIL]: type },
  });
}

export interface PublisherOptions {
  /** Largest request (estimated record batch bytes); set it to the broker's limit if lower. */
  maxRequestBytes?: number;
}

/** One kafkajs producer behind a narrow interface (kafkajs is in maintenance mode; stay replaceable). */
export class KafkaPublisher {
  readonly #producer: Producer;
  #connected = false;
  /** What one request may carry; a single message over it is refused before sending. */
  readonly maxRequestBytes: number;

  constructor(kafka: Kafka, options: PublisherOptions = {}) {
    this.maxRequestBytes = options.maxRequestBytes ?? MAX_PRODUCE_REQUEST_BYTES;
    this.#producer = kafka.producer({
      createPartitioner: cachingPartitioner,
      allowAutoTopicCreation: false,
      // Retries here are per request; the services own the longer backoff.
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
  }

  async connect(): Promise<void> {
    await this.#producer.connect();
    this.#connected = true;
  }

  /**
   * Sends `messages` in order, as many requests as it takes to stay within `maxRequestBytes`.
   * A failure may leave earlier requests sent (a retry repeats them: at least once). The broker
   * refusing records (message too large, invalid record) throws an AppError that is not
   * retriable and that `isRefusedByBroker` recognises; anything else is worth trying again.
   */
  async send(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    // One run after the other: kafkajs does not keep concurrent sends in order, and a partition's
    // trades out of order would make the later-sent earlier ones late.
    for (const run of splitForProduce(messages, this.maxRequestBytes, MESSAGES_PER_SEND)) {
      const first = run[0]!;
      if (run.length === 1 && singleRecordBatchBytes(first) > this.maxRequestBytes) {
        throw refused(
          'MESSAGE_TOO_LARGE',
          `one message of ${singleRecordBatchBytes(first)} bytes exceeds the ${this.maxRequestBytes}-byte request limit`,
        );
      }
      await this.#sendRun(topic, run);
    }
  }

  async #sendRun(topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
    try {
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
    } catch (err) {
      const protocol = protocolError(err);
      if (protocol && !protocol.retriable) {
        throw refused(
          protocol.type,
          `the broker refused ${messages.length} messages on ${topic}: ${protocol.type}`,
          err,
        );
      }
      throw err;
    }
  }

  /** Idempotent. */
  async disconnect(): Promise<void> {
    if (!this.#connected) return;
    this.#connected = false;
    await this.#producer.disconnect();
  }
}
