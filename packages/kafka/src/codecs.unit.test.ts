import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import * as snappy from 'snappyjs';
import { describe, expect, it } from 'vitest';
import { lz4Codec, snappyCodec, zstdCodec } from './codecs.js';
import './client.js';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** Compressible and incompressible bytes, small and larger than one LZ4 block (64 KiB). */
const SAMPLES = {
  empty: Buffer.alloc(0),
  text: Buffer.from('{"symbol":"BTC-USD","price":"64000.5"}\n'.repeat(5000)),
  random: randomBytes(100_000),
};

describe('kafkajs compression codecs', () => {
  it.each([
    ['snappy', snappyCodec],
    ['lz4', lz4Codec],
    ['zstd', zstdCodec],
  ] as const)('%s round-trips compressible and random bytes', async (_, codec) => {
    for (const sample of Object.values(SAMPLES)) {
      const compressed = await codec.compress({ buffer: sample });
      expect(await codec.decompress(compressed)).toEqual(sample);
    }
    const text = await codec.compress({ buffer: SAMPLES.text });
    expect(text.length).toBeLessThan(SAMPLES.text.length / 4);
  });

  it('snappy reads the xerial framing Java producers write', async () => {
    const half = SAMPLES.text.length / 2;
    const blocks = [SAMPLES.text.subarray(0, half), SAMPLES.text.subarray(half)].map((b) =>
      Buffer.from(snappy.compress(b)),
    );
    const header = Buffer.alloc(16);
    Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]).copy(header);
    header.writeInt32BE(1, 8);
    header.writeInt32BE(1, 12);
    const framed = Buffer.concat([
      header,
      ...blocks.flatMap((b) => {
        const length = Buffer.alloc(4);
        length.writeInt32BE(b.length);
        return [length, b];
      }),
    ]);
    expect(await snappyCodec.decompress(framed)).toEqual(SAMPLES.text);
  });

  it('lz4 writes the LZ4 frame format (magic 0x184D2204) that librdkafka and Java read', async () => {
    const compressed = await lz4Codec.compress({ buffer: SAMPLES.text });
    expect(compressed.readUInt32LE(0)).toBe(0x184d2204);
  });

  it('importing the client registers snappy, lz4 and zstd with kafkajs', () => {
    expect(CompressionCodecs[CompressionTypes.Snappy]()).toBe(snappyCodec);
    expect(CompressionCodecs[CompressionTypes.LZ4]()).toBe(lz4Codec);
    expect(CompressionCodecs[CompressionTypes.ZSTD]()).toBe(zstdCodec);
  });
});
