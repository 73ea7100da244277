import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_CI, KCAT_BIN } from './config.js';
import { startBroker, type RunningBroker } from './index.js';
import { ErrorCode } from './protocol/errors.js';
import { Writer } from './protocol/writer.js';
import { batchHeader, Compression, scanStoredBatches } from './records/record-batch.js';
import {
  kafkaClient,
  kcatConsumeAll,
  kcatFound,
  randomName,
  RawClient,
  runKcat,
} from './testing.js';

/**
 * Compressed produce from librdkafka: it used to fall back to uncompressed batches for gzip,
 * snappy and lz4 (the broker did not advertise Produce v0) and zstd was refused outright.
 */

let broker: RunningBroker;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'candlestream-codecs-'));
  broker = await startBroker({ port: 0, dataDir });
});
afterAll(async () => {
  await broker?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function createTopic(): Promise<string> {
  const topic = randomName('codec');
  const admin = kafkaClient(broker.brokers).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  await admin.disconnect();
  return topic;
}

/** The codec of every batch in the partition's segment files, as stored. */
function storedCodecs(topic: string): number[] {
  const dir = join(dataDir, 'topics', topic, '0');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .sort()
    .flatMap((f) => scanStoredBatches(readFileSync(join(dir, f))).batches)
    .map((b) => batchHeader(b.data).compression);
}

describe('advertised Produce versions', () => {
  it('ApiVersions reports Produce from v0 (librdkafka compresses only then) yet Produce v2 is refused', async () => {
    const client = await RawClient.connect(broker.brokers);
    try {
      const r = await client.request(18, 0, Buffer.alloc(0));
      expect(r.int16()).toBe(ErrorCode.NONE);
      const apis = r.array((a) => ({ key: a.int16(), min: a.int16(), max: a.int16() }));
      expect(apis.find((a) => a.key === 0)).toEqual({ key: 0, min: 0, max: 7 });

      const v2 = new Writer()
        .int16(1)
        .int32(1000)
        .array([], () => undefined)
        .toBuffer();
      const refused = await client.request(0, 2, v2);
      expect(refused.int16()).toBe(ErrorCode.UNSUPPORTED_VERSION);
    } finally {
      client.close();
    }
  });
});

it.runIf(!kcatFound && IS_CI)('kcat is installed (CI=true requires it)', () => {
  throw new Error(`CI=true and ${KCAT_BIN} is missing: the CI image must apt-get install -y kcat`);
});

describe.skipIf(!kcatFound)('kcat (librdkafka) compressed produce', () => {
  it.each([
    ['gzip', Compression.GZIP],
    ['snappy', Compression.SNAPPY],
    ['lz4', Compression.LZ4],
    ['zstd', Compression.ZSTD],
  ] as const)(
    'kcat -z %s stores really compressed batches and reads them back',
    async (codec, id) => {
      const topic = await createTopic();
      const lines = Array.from({ length: 500 }, (_, i) => `candle-${i}-${'x'.repeat(i % 50)}`);
      const produced = await runKcat(
        [
          '-b',
          broker.brokers,
          '-P',
          '-t',
          topic,
          '-z',
          codec,
          '-X',
          'acks=all',
          '-X',
          'linger.ms=50',
        ],
        lines.join('\n') + '\n',
      );
      expect(produced.code, produced.stderr).toBe(0);
      const codecs = storedCodecs(topic);
      expect(codecs.length).toBeGreaterThan(0);
      expect(new Set(codecs)).toEqual(new Set([id]));

      const consumed = await kcatConsumeAll(broker.brokers, topic, '%o %s');
      expect(consumed.code, consumed.stderr).toBe(0);
      expect(consumed.lines).toEqual(lines.map((line, i) => `${i} ${line}`));
    },
  );
});
