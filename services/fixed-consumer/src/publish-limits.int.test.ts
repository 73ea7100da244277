/**
 * Regressions: one batch's dead letters or bar updates went out as one produce request; over the
 * broker's limit (MESSAGE_TOO_LARGE) it was retried forever and every partition stopped, also
 * after a restart. Each burst here halted the consumer for good; now each must end with every
 * valid trade stored, every bad message dead-lettered, the lag back to 0 and no restart.
 */
import type { MarketSymbol } from '@candlestream/core';
import { encodeTick, MINUTE_MS } from '@candlestream/core';
import { makeTick } from '@candlestream/core/testing';
import type { ConsumedMessage, OutgoingMessage } from '@candlestream/kafka';
import { BatchConsumer, DLQ_HEADERS, KafkaPublisher } from '@candlestream/kafka';
import { needServices, uniqueName, waitUntil } from '@candlestream/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FixedConsumer } from './service.js';
import type { ConsumerFixture } from './testing.js';
import {
  messageCount,
  startConsumer,
  startInfra,
  storedTrades,
  totalLag,
  withNewTopics,
} from './testing.js';

const services = needServices(['postgres']);
/** Generous under CI load: 20,000 trades through one partition on 2 shared cores. */
const BURST_WAIT_MS = 90_000;
const TEST_TIMEOUT_MS = 150_000;
/** The embedded broker's message.max.bytes is 1,048,588; the test's own producer goes to 1 MiB. */
const ONE_MIB = 1_048_576;
/** Test-side produce requests stay small, so only the consumer's own publishing is on trial. */
const PRODUCE_CHUNK = 1_000;

describe.skipIf(services.skip)('fixed consumer: publishing within the broker limits', () => {
  let infra: ConsumerFixture;
  /** This test's topics and group (each test is independent of the others' outcome). */
  let f: ConsumerFixture;
  let producer: KafkaPublisher;
  let consumer: FixedConsumer | undefined;

  beforeAll(async () => {
    infra = await startInfra(services.get('postgres').url);
    producer = new KafkaPublisher(infra.kafka, { maxRequestBytes: ONE_MIB });
    await producer.connect();
  });

  beforeEach(async () => {
    f = await withNewTopics(infra);
  });

  afterEach(async () => {
    await consumer?.stop();
    consumer = undefined;
  });

  afterAll(async () => {
    await producer.disconnect();
    await infra.close();
  });

  async function produce(messages: readonly OutgoingMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += PRODUCE_CHUNK) {
      await producer.send(f.topics.ticks.name, messages.slice(i, i + PRODUCE_CHUNK));
    }
  }

  async function drained(
    c: FixedConsumer,
    symbol: string,
    storedWanted: number,
    deadWanted: number,
  ) {
    await waitUntil(
      `${storedWanted} trades stored, ${deadWanted} dead letters and lag 0`,
      async () =>
        (await storedTrades(f, symbol)) === storedWanted &&
        (await messageCount(f.kafka, f.topics.dlq.name)) === deadWanted &&
        (await totalLag(f)) === 0,
      BURST_WAIT_MS,
    );
    // Carried on without a restart: consuming all along, never a failed start.
    expect(c.state()).toBe('consuming.healthy');
    expect(c.health().checks).not.toHaveProperty('lastError');
  }

  it(
    'regression: 10,000 unsupported messages of one key in one burst all reach the DLQ',
    async () => {
      consumer = await startConsumer(f);
      const key = 'BTC-USD';
      const bad = Array.from({ length: 10_000 }, (_, i) => ({
        key,
        value:
          `{"v":2,"symbol":"BTC-USD","ts":${1_700_000_000_000 + i},"price":37000.5,"size":0.01,"n":${i}}`.padEnd(
            130,
            ' ',
          ),
      }));
      const good = makeTick({ symbol: 'BTC-USD' as MarketSymbol, ts: 1_700_000_000_000, price: 1 });
      await produce([...bad, { key, value: encodeTick(good) }]);
      await drained(consumer, 'BTC-USD', 1, bad.length);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'regression: 20,000 trades of one symbol a minute apart in one burst are stored and announced',
    async () => {
      consumer = await startConsumer(f);
      const symbol = 'ETH-USD' as MarketSymbol;
      const t0 = Date.UTC(2025, 0, 6); // a Monday, long before the restore window
      const trades = Array.from({ length: 20_000 }, (_, i) =>
        makeTick({ symbol, ts: t0 + i * MINUTE_MS + 1_000, price: 100 + (i % 50), id: `m${i}` }),
      );
      await produce(trades.map((t) => ({ key: symbol, value: encodeTick(t) })));
      await drained(consumer, symbol, trades.length, 0);
      // Every closed minute went out on bar-updates (all but the last, still forming, as final).
      const announced = await messageCount(f.kafka, f.topics.barUpdates.name);
      expect(announced).toBeGreaterThanOrEqual(trades.length);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'regression: a 1,048,400-byte value is dead-lettered truncated, with its size and why',
    async () => {
      consumer = await startConsumer(f);
      const symbol = 'SOL-USD' as MarketSymbol;
      const around = [0, 1].map((i) =>
        makeTick({ symbol, ts: Date.UTC(2025, 0, 6) + i * MINUTE_MS, price: 10, id: `s${i}` }),
      );
      const huge = Buffer.alloc(1_048_400, 'x');
      await producer.send(f.topics.ticks.name, [{ key: symbol, value: encodeTick(around[0]!) }]);
      await producer.send(f.topics.ticks.name, [{ key: symbol, value: huge }]);
      await producer.send(f.topics.ticks.name, [{ key: symbol, value: encodeTick(around[1]!) }]);
      await drained(consumer, symbol, around.length, 1);

      const letters: ConsumedMessage[] = [];
      const reader = new BatchConsumer(f.kafka, {
        groupId: uniqueName('dlq-reader'),
        topics: [f.topics.dlq.name],
      });
      await reader.start((batch) => {
        letters.push(...batch.messages);
        return Promise.resolve();
      });
      try {
        await waitUntil('the dead letter read back', () => letters.length === 1, 30_000);
      } finally {
        await reader.stop();
      }
      const letter = letters[0]!;
      expect(letter.key?.toString()).toBe(symbol);
      expect(letter.headers[DLQ_HEADERS.originalBytes]).toBe('1048400');
      expect(letter.headers[DLQ_HEADERS.truncated]).toMatch(/of 1048400 bytes/);
      expect(letter.headers[DLQ_HEADERS.reason]).toBeTruthy();
      expect(letter.value!.length).toBeLessThan(huge.length);
      expect(letter.value!.equals(huge.subarray(0, letter.value!.length))).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );
});
