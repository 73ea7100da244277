/**
 * Snappy, LZ4 and ZStandard for kafkajs, which ships only gzip (kafkajs docs, "Compression").
 * Without them a kafkajs consumer throws on the first batch a librdkafka producer (kcat, or any
 * service on Redpanda) compressed with one of these codecs. All three are pure JavaScript or
 * WebAssembly shipped inside their npm package: no native build, no install script.
 */
import {
  init as initZstd,
  compress as zstdCompress,
  decompress as zstdDecompress,
} from '@bokuweb/zstd-wasm';
import kafkajs from 'kafkajs';
import * as lz4 from 'lz4js';
import * as snappy from 'snappyjs';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/** What kafkajs hands a codec to compress: an Encoder, of which only the bytes matter here. */
interface RecordsEncoder {
  buffer: Buffer;
}

interface KafkaCodec {
  compress(encoder: RecordsEncoder): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

/**
 * Java clients frame snappy the xerial way (snappy-java SnappyOutputStream): this 8-byte magic,
 * two int32 versions, then blocks of int32 length + raw snappy. librdkafka writes raw snappy and
 * reads both; so do we.
 */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER_BYTES = 16;

function snappyDecompress(buffer: Buffer): Buffer {
  if (
    buffer.length < XERIAL_HEADER_BYTES ||
    !buffer.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)
  ) {
    return Buffer.from(snappy.uncompress(buffer));
  }
  const blocks: Buffer[] = [];
  for (let at = XERIAL_HEADER_BYTES; at < buffer.length;) {
    const length = buffer.readInt32BE(at);
    at += 4;
    blocks.push(Buffer.from(snappy.uncompress(buffer.subarray(at, at + length))));
    at += length;
  }
  return Buffer.concat(blocks);
}

export const snappyCodec: KafkaCodec = {
  compress: (encoder) => Promise.resolve(Buffer.from(snappy.compress(encoder.buffer))),
  decompress: (buffer) => Promise.resolve(snappyDecompress(buffer)),
};

/** Kafka's LZ4 is the LZ4 frame format with a correct header checksum (KIP-57). */
export const lz4Codec: KafkaCodec = {
  compress: (encoder) => Promise.resolve(Buffer.from(lz4.compress(encoder.buffer))),
  decompress: (buffer) => Promise.resolve(Buffer.from(lz4.decompress(buffer))),
};

/** zstd level 3 is the library's (and Kafka's) default. */
const ZSTD_LEVEL = 3;
/**
 * A frame written by a streaming compressor (the Java client's) does not state its content size;
 * the WebAssembly decoder then needs an output bound. Start at the default fetch size and grow.
 */
const ZSTD_FIRST_BOUND_BYTES = 1024 * 1024;
const ZSTD_MAX_BOUND_BYTES = 256 * 1024 * 1024;

let zstdReady: Promise<void> | null = null;
function zstd(): Promise<void> {
  zstdReady ??= initZstd();
  return zstdReady;
}

function zstdDecompressGrowing(buffer: Buffer): Buffer {
  for (let bound = ZSTD_FIRST_BOUND_BYTES; ; bound *= 4) {
    try {
      return Buffer.from(zstdDecompress(buffer, { defaultHeapSize: bound }));
    } catch (err) {
      if (bound >= ZSTD_MAX_BOUND_BYTES) throw err;
    }
  }
}

export const zstdCodec: KafkaCodec = {
  compress: async (encoder) => {
    await zstd();
    return Buffer.from(zstdCompress(encoder.buffer, ZSTD_LEVEL));
  },
  decompress: async (buffer) => {
    await zstd();
    return zstdDecompressGrowing(buffer);
  },
};

/** Adds the three codecs to kafkajs' process-wide table; idempotent. */
export function registerCompressionCodecs(): void {
  CompressionCodecs[CompressionTypes.Snappy] = () => snappyCodec;
  CompressionCodecs[CompressionTypes.LZ4] = () => lz4Codec;
  CompressionCodecs[CompressionTypes.ZSTD] = () => zstdCodec;
}

// The table is process-wide, so importing this module (client.ts does) is what registers them.
registerCompressionCodecs();
