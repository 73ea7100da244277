import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FRAME_BYTES, startBroker, type RunningBroker } from './index.js';
import { ErrorCode } from './protocol/errors.js';
import { Reader } from './protocol/reader.js';
import { crc32c } from './records/crc32c.js';
import { Writer } from './protocol/writer.js';
import { Compression, encodeBatch } from './records/record-batch.js';
import { kafkaClient, RawClient, randomName } from './testing.js';

let broker: RunningBroker;
let topic: string;

beforeAll(async () => {
  broker = await startBroker({ port: 0 });
  topic = randomName('robust');
  const admin = kafkaClient(broker.brokers).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  await admin.disconnect();
});
afterAll(async () => {
  await broker.stop();
});

function produceBody(records: Buffer, acks = 1): Buffer {
  return new Writer()
    .string(null)
    .int16(acks)
    .int32(1000)
    .array([topic], (w, t) => w.string(t).array([records], (w, r) => w.int32(0).bytes(r)))
    .toBuffer();
}

/** Produce v7 response: topic, partition, error code. */
async function produceError(client: RawClient, records: Buffer): Promise<number> {
  const r = await client.request(0, 7, produceBody(records));
  r.int32();
  r.string();
  r.int32();
  r.int32();
  return r.int16();
}

async function metadataWorks(client: RawClient): Promise<boolean> {
  const r = await client.request(
    3,
    1,
    new Writer().array([topic], (w, t) => w.string(t)).toBuffer(),
  );
  return r.remaining > 0;
}

describe('robustness', () => {
  it('a malformed frame closes that connection only', async () => {
    const bystander = await RawClient.connect(broker.brokers);
    const bad = await RawClient.connect(broker.brokers);
    // A Metadata v1 request whose topic array claims far more entries than the frame holds.
    bad.socket.write(bad.frame(3, 1, new Writer().int32(1_000_000).toBuffer()));
    await bad.closed;
    expect(await metadataWorks(bystander)).toBe(true);
    bystander.close();
  });

  it('an oversized frame closes the connection before the body arrives', async () => {
    const client = await RawClient.connect(broker.brokers);
    const size = Buffer.alloc(4);
    size.writeInt32BE(MAX_FRAME_BYTES + 1);
    client.socket.write(size);
    await client.closed;
    const other = await RawClient.connect(broker.brokers);
    expect(await metadataWorks(other)).toBe(true);
    other.close();
  });

  it('answers an unsupported version with UNSUPPORTED_VERSION and keeps the connection', async () => {
    const client = await RawClient.connect(broker.brokers);
    const apiVersions = await client.request(18, 9, Buffer.alloc(0));
    expect(apiVersions.int16()).toBe(ErrorCode.UNSUPPORTED_VERSION);
    const produceV0 = await client.request(0, 0, Buffer.alloc(0));
    expect(produceV0.int16()).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(await metadataWorks(client)).toBe(true);
    client.close();
  });

  it('speaks ApiVersions v3 (flexible request, v0 response header) and advertises Fetch 4-11', async () => {
    const client = await RawClient.connect(broker.brokers);
    const body = new Writer()
      .compactString('test-client')
      .compactString('1.0')
      .noTaggedFields()
      .toBuffer();
    // Request header v2: a tagged-field section follows client_id.
    const frame = client.frame(18, 3, Buffer.concat([Buffer.from([0]), body]));
    const response = new Promise<Buffer>((resolve) => client.socket.once('data', resolve));
    client.socket.write(frame);
    const data = await response;
    const r = new Reader(data, 8);
    expect(r.int16()).toBe(0);
    const count = r.uvarint() - 1;
    const apis = new Map<number, [number, number]>();
    for (let i = 0; i < count; i++) {
      const key = r.int16();
      apis.set(key, [r.int16(), r.int16()]);
      r.skipTaggedFields();
    }
    expect(apis.get(1)).toEqual([4, 11]);
    expect(apis.get(18)).toEqual([0, 3]);
    client.close();
  });

  it('rejects a batch with a bad CRC or a codec Kafka does not define, storing nothing', async () => {
    const client = await RawClient.connect(broker.brokers);
    const good = encodeBatch([{ value: Buffer.from('ok'), timestamp: Date.now() }]);
    const corrupt = Buffer.from(good);
    corrupt[corrupt.length - 1] = (corrupt[corrupt.length - 1] ?? 0) ^ 0xff;
    expect(await produceError(client, corrupt)).toBe(ErrorCode.CORRUPT_MESSAGE);
    const claiming = (codec: number): Buffer => {
      // Claim the codec in the attributes and fix the CRC so only the codec differs.
      const batch = Buffer.from(good);
      batch.writeInt16BE(codec, 21);
      batch.writeUInt32BE(crc32c(batch.subarray(21)), 17);
      return batch;
    };
    expect(await produceError(client, claiming(5))).toBe(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE);
    // snappy is stored as sent: the broker validates the header and never decompresses.
    expect(await produceError(client, claiming(Compression.SNAPPY))).toBe(ErrorCode.NONE);
    expect(await produceError(client, good)).toBe(ErrorCode.NONE);
    const admin = kafkaClient(broker.brokers).admin();
    await admin.connect();
    const [offsets] = await admin.fetchTopicOffsets(topic);
    expect(offsets?.high).toBe('2');
    await admin.disconnect();
    client.close();
  });

  it('serves many clients at once', async () => {
    const clients = await Promise.all(
      Array.from({ length: 50 }, () => RawClient.connect(broker.brokers)),
    );
    const batch = encodeBatch([{ value: Buffer.from('many'), timestamp: Date.now() }]);
    const errors = await Promise.all(clients.map((c) => produceError(c, batch)));
    expect(errors.every((e) => e === ErrorCode.NONE)).toBe(true);
    for (const c of clients) c.close();
  });
});
