/**
 * What the embedded broker costs a client, beside baselines measured in the same run:
 * - produce: kafkajs sending ~200-byte tick messages in batches of 1000 and of 100, beside a raw
 *   TCP echo of the same bytes (the floor any Kafka-protocol hop sits on);
 * - consume: one kafkajs consumer reading 20 000 stored ticks (seek to 0, read to the end);
 * - end-to-end latency: one tick produced (acks=1) until the running consumer sees it, beside a
 *   TCP round trip of the same bytes.
 * vitest prints ops/s; the table printed at the end turns them into messages/s.
 */
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { afterAll, bench, describe } from 'vitest';
import type { Consumer, Producer } from 'kafkajs';
import { startBroker } from './index.js';
import { kafkaClient, randomName, waitFor } from './testing.js';

const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD'];
const CONSUME_MESSAGES = 20_000;
const BENCH_OPTIONS = { time: 1500, warmupTime: 200, warmupIterations: 2 };

/** A contract-shaped tick message (~200 bytes of JSON, key = symbol). */
function tick(i: number): { key: string; value: string } {
  const symbol = SYMBOLS[i % SYMBOLS.length] as string;
  const value = JSON.stringify({
    v: 1,
    symbol,
    ts: 1_700_000_000_000 + i,
    price: 37_000.5 + (i % 100) / 10,
    size: 0.0125,
    side: i % 2 ? 'buy' : 'sell',
    id: `bench-${i}-${'0'.repeat(40)}`,
    source: 'synthetic',
  });
  return { key: symbol, value };
}

const batch1000 = Array.from({ length: 1000 }, (_, i) => tick(i));
const batch100 = batch1000.slice(0, 100);
const batchBytes = Buffer.from(batch1000.map((m) => m.key + m.value).join(''));
const oneTickBytes = Buffer.from(batch1000[0]!.key + batch1000[0]!.value);

const broker = await startBroker({ port: 0 });
const kafka = kafkaClient(broker.brokers);
const admin = kafka.admin();
await admin.connect();
const produceTopic = randomName('bench-produce');
const consumeTopic = randomName('bench-consume');
const latencyTopic = randomName('bench-latency');
await admin.createTopics({
  topics: [
    {
      topic: produceTopic,
      numPartitions: 4,
      configEntries: [{ name: 'retention.bytes', value: String(64 * 1024 * 1024) }],
    },
    { topic: consumeTopic, numPartitions: 1 },
    { topic: latencyTopic, numPartitions: 1 },
  ],
});
await admin.disconnect();

const producer: Producer = kafka.producer();
await producer.connect();
for (let i = 0; i < CONSUME_MESSAGES; i += 1000)
  await producer.send({ topic: consumeTopic, messages: batch1000 });

let consumed = 0;
const consumer: Consumer = kafka.consumer({ groupId: randomName('bench'), maxWaitTimeInMs: 100 });
await consumer.connect();
await consumer.subscribe({ topic: consumeTopic, fromBeginning: true });
await consumer.run({
  eachBatch: ({ batch }) => {
    consumed += batch.messages.length;
    return Promise.resolve();
  },
});
await waitFor(() => consumed >= CONSUME_MESSAGES, 'the consume topic to be read once', 60_000);

let latencySeen = -1;
/** Resolved by the consumer itself, so the measurement includes no polling delay. */
let latencyArrived: ((seq: number) => void) | null = null;
const latencyConsumer: Consumer = kafka.consumer({
  groupId: randomName('bench'),
  maxWaitTimeInMs: 1000,
});
await latencyConsumer.connect();
await latencyConsumer.subscribe({ topic: latencyTopic });
await latencyConsumer.run({
  eachMessage: ({ message }) => {
    latencySeen = Number(String(message.key));
    latencyArrived?.(latencySeen);
    return Promise.resolve();
  },
});
let latencySeq = 0;
// The group must own the partition before any latency probe is sent.
await waitFor(
  async () => {
    const probe = ++latencySeq;
    await producer.send({
      topic: latencyTopic,
      messages: [{ key: String(probe), value: oneTickBytes }],
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    return latencySeen === probe;
  },
  'the latency consumer to be assigned',
  30_000,
);

/** A TCP echo server and one connected client: the transport floor without any protocol. */
const echoServer: Server = createServer((socket) => socket.pipe(socket));
await new Promise<void>((resolve) => echoServer.listen(0, '127.0.0.1', resolve));
const echoPort = (echoServer.address() as { port: number }).port;
const echoClient: Socket = createConnection({ host: '127.0.0.1', port: echoPort });
echoClient.setNoDelay(true);
await new Promise((resolve) => echoClient.once('connect', resolve));

function echo(bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    let received = 0;
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received >= bytes.length) {
        echoClient.off('data', onData);
        resolve();
      }
    };
    echoClient.on('data', onData);
    echoClient.write(bytes);
  });
}

/** Messages and time per bench, for the messages/s table. */
const figures = new Map<string, { messages: number; ms: number }>();
function measured(
  name: string,
  messagesPerOp: number,
  op: () => Promise<void>,
): [string, () => Promise<void>] {
  return [
    name,
    async () => {
      const start = performance.now();
      await op();
      const entry = figures.get(name) ?? { messages: 0, ms: 0 };
      entry.messages += messagesPerOp;
      entry.ms += performance.now() - start;
      figures.set(name, entry);
    },
  ];
}

describe('produce ~200-byte ticks (1000 messages per op)', () => {
  bench(
    ...measured('kafkajs send, batches of 1000', 1000, async () => {
      await producer.send({ topic: produceTopic, messages: batch1000 });
    }),
    BENCH_OPTIONS,
  );
  bench(
    ...measured('kafkajs send, batches of 100', 1000, async () => {
      for (let i = 0; i < 10; i++) await producer.send({ topic: produceTopic, messages: batch100 });
    }),
    BENCH_OPTIONS,
  );
  bench(
    ...measured('baseline: TCP echo of the same bytes', 1000, () => echo(batchBytes)),
    BENCH_OPTIONS,
  );
});

describe(`consume ~200-byte ticks (${CONSUME_MESSAGES} messages per op)`, () => {
  bench(
    ...measured('kafkajs consumer, seek to 0 and read all', CONSUME_MESSAGES, async () => {
      consumed = 0;
      consumer.seek({ topic: consumeTopic, partition: 0, offset: '0' });
      await waitFor(() => consumed >= CONSUME_MESSAGES, 'a full read', 60_000);
    }),
    { ...BENCH_OPTIONS, time: 3000 },
  );
});

describe('end-to-end latency, one tick', () => {
  bench(
    ...measured('kafkajs produce (acks=1) -> broker -> kafkajs consumer', 1, async () => {
      const probe = ++latencySeq;
      const arrived = new Promise<void>((resolve) => {
        latencyArrived = (seq) => {
          if (seq === probe) resolve();
        };
      });
      await producer.send({
        topic: latencyTopic,
        acks: 1,
        messages: [{ key: String(probe), value: oneTickBytes }],
      });
      await arrived;
    }),
    BENCH_OPTIONS,
  );
  bench(...measured('baseline: TCP echo round trip', 1, () => echo(oneTickBytes)), BENCH_OPTIONS);
});

afterAll(async () => {
  const rows = [...figures].map(([name, { messages, ms }]) => ({
    bench: name,
    'messages/s': Math.round((messages / ms) * 1000),
    'mean ms/op': Number((ms / Math.max(1, messages)).toFixed(4)),
  }));
  process.stdout.write('\nbroker figures (including warmup iterations):\n');
  console.table(rows);
  echoClient.destroy();
  echoServer.close();
  await Promise.all([consumer.disconnect(), latencyConsumer.disconnect(), producer.disconnect()]);
  await broker.stop();
});
