import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '@candlestream/core';
import { AppError, systemClock } from '@candlestream/core';
import type { Kafka } from 'kafkajs';
import { consumedMessage, type ConsumedMessage } from './consumer.js';

export interface TopicTailOptions {
  /** At most this many of the newest records of each partition. */
  perPartition: number;
  /** The whole read, connect to last record; beyond it the read rejects (TIMEOUT, retriable). */
  timeoutMs: number;
  /** The timeout runs on it; default systemClock. */
  clock?: Clock;
}

/**
 * The newest records of a topic: up to `perPartition` of each non-empty partition, in partition
 * and offset order, as they were when the read began (later records are left out).
 *
 * kafkajs has no manual partition assignment, so this joins a throwaway consumer group (a random
 * id, nothing committed) and seeks each partition to max(low, high - perPartition); it stops once
 * every partition has delivered its record at high - 1. Always disconnects, also on a timeout.
 */
export async function readTopicTail(
  kafka: Kafka,
  topic: string,
  options: TopicTailOptions,
): Promise<ConsumedMessage[]> {
  const clock = options.clock ?? systemClock;
  const perPartition = BigInt(Math.max(0, Math.floor(options.perPartition)));
  // A few quick retries ride out a coordinator or leader still settling; the timeout bounds them.
  const retry = { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 };
  const admin = kafka.admin({ retry });
  const consumer = kafka.consumer({
    groupId: `tail-${topic}-${randomUUID()}`,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
    retry: { ...retry, restartOnFailure: () => Promise.resolve(false) },
  });
  let closed = false;
  const close = (): Promise<unknown> =>
    Promise.all([
      consumer.disconnect().catch(() => undefined),
      admin.disconnect().catch(() => undefined),
    ]);

  // After a timeout the read goes no further: a consumer joining late would run on unclosed.
  const goOn = (): void => {
    if (closed) throw new AppError('CANCELLED', `reading the tail of ${topic} was cut off`);
  };
  const work = (async (): Promise<ConsumedMessage[]> => {
    await admin.connect();
    goOn();
    const ranges = new Map<number, { from: bigint; high: bigint }>();
    const offsets = await admin.fetchTopicOffsets(topic);
    goOn();
    for (const p of offsets) {
      const low = BigInt(p.low);
      const high = BigInt(p.high);
      if (high <= low || perPartition === 0n) continue;
      ranges.set(p.partition, {
        from: high - perPartition > low ? high - perPartition : low,
        high,
      });
    }
    if (ranges.size === 0) return [];
    const read = new Map<number, ConsumedMessage[]>([...ranges.keys()].map((p) => [p, []]));
    const pending = new Set(ranges.keys());
    await consumer.connect();
    goOn();
    await consumer.subscribe({ topic, fromBeginning: false });
    goOn();
    await new Promise<void>((resolve, reject) => {
      consumer.on(consumer.events.CRASH, (event) => reject(event.payload.error));
      consumer
        .run({
          autoCommit: false,
          eachBatch: ({ batch }) => {
            const range = ranges.get(batch.partition);
            if (range === undefined) return Promise.resolve();
            for (const m of batch.messages) {
              const offset = BigInt(m.offset);
              if (offset < range.from || offset >= range.high) continue;
              read.get(batch.partition)!.push(consumedMessage(topic, batch.partition, m));
              if (offset === range.high - 1n) pending.delete(batch.partition);
            }
            if (pending.size === 0) resolve();
            return Promise.resolve();
          },
        })
        .catch(reject);
      // kafkajs takes seeks once `run` has made the group; they apply at each partition's first
      // fetch after assignment, so no record before `from` is delivered.
      for (const [partition, range] of ranges) {
        consumer.seek({ topic, partition, offset: range.from.toString() });
      }
    });
    return [...read.entries()].sort(([a], [b]) => a - b).flatMap(([, messages]) => messages);
  })();

  let timer: TimerHandle | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(
      () =>
        reject(
          new AppError(
            'TIMEOUT',
            `reading the tail of ${topic} timed out after ${options.timeoutMs} ms`,
            {
              retriable: true,
            },
          ),
        ),
      options.timeoutMs,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } catch (err) {
    throw AppError.from(err, 'UNAVAILABLE');
  } finally {
    clock.clearTimeout(timer);
    closed = true;
    await close();
    // A read cut off by the timeout may still connect afterwards; close again once it settles.
    work.then(close, close).catch(() => undefined);
  }
}
