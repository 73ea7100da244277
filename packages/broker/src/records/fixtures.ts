import { crc32c } from './crc32c.js';

/** Test fixtures for record batches (unit tests and benchmarks; nothing in the broker uses them). */

const ATTRIBUTES_AT = 21;
const CRC_AT = 17;

/**
 * The batch with its attributes claiming `codec`, CRC recomputed. The broker validates and
 * stores compressed batches by their header alone, so the payload need not really be compressed.
 */
export function withCodec(batch: Buffer, codec: number): Buffer {
  const out = Buffer.from(batch);
  out.writeInt16BE((out.readInt16BE(ATTRIBUTES_AT) & ~0x07) | codec, ATTRIBUTES_AT);
  out.writeUInt32BE(crc32c(out.subarray(ATTRIBUTES_AT)), CRC_AT);
  return out;
}
