import { malformed } from './errors.js';

/**
 * Sequential decoder for the Kafka protocol primitive types (protocol guide, "Protocol Primitive
 * Types"). Every read is bounds-checked: a short or lying frame throws MALFORMED_MESSAGE, which
 * closes only the connection that sent it.
 */
export class Reader {
  offset: number;

  constructor(
    readonly buf: Buffer,
    offset = 0,
  ) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(bytes: number): number {
    if (bytes < 0 || this.offset + bytes > this.buf.length) {
      throw malformed('frame ended early', { at: this.offset, need: bytes, size: this.buf.length });
    }
    const at = this.offset;
    this.offset += bytes;
    return at;
  }

  int8(): number {
    return this.buf.readInt8(this.need(1));
  }
  bool(): boolean {
    return this.int8() !== 0;
  }
  int16(): number {
    return this.buf.readInt16BE(this.need(2));
  }
  int32(): number {
    return this.buf.readInt32BE(this.need(4));
  }
  uint32(): number {
    return this.buf.readUInt32BE(this.need(4));
  }
  /** Offsets and timestamps fit in a double's 53 bits for any log this broker will hold. */
  int64(): number {
    return Number(this.buf.readBigInt64BE(this.need(8)));
  }

  /** Unsigned LEB128 as used for compact lengths and tag numbers (KIP-482). */
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.buf[this.need(1)] ?? 0;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 28) throw malformed('varint too long');
    }
  }

  /** Zig-zag signed varint as used inside records (KIP-98 record format). */
  varint(): number {
    const raw = this.uvarint();
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  /** Zig-zag signed varlong (record timestamp deltas); safe up to 2^53. */
  varlong(): number {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.buf[this.need(1)] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
      if (shift > 63n) throw malformed('varlong too long');
    }
    return Number((result >> 1n) ^ -(result & 1n));
  }

  raw(length: number): Buffer {
    const at = this.need(length);
    return this.buf.subarray(at, at + length);
  }

  nullableString(): string | null {
    const length = this.int16();
    if (length === -1) return null;
    if (length < -1) throw malformed('negative string length');
    return this.raw(length).toString('utf8');
  }
  string(): string {
    const value = this.nullableString();
    if (value === null) throw malformed('null where a string is required');
    return value;
  }
  nullableBytes(): Buffer | null {
    const length = this.int32();
    if (length === -1) return null;
    if (length < -1) throw malformed('negative bytes length');
    return this.raw(length);
  }
  bytes(): Buffer {
    return this.nullableBytes() ?? Buffer.alloc(0);
  }

  compactNullableString(): string | null {
    const length = this.uvarint() - 1;
    if (length === -1) return null;
    return this.raw(length).toString('utf8');
  }
  compactString(): string {
    const value = this.compactNullableString();
    if (value === null) throw malformed('null where a string is required');
    return value;
  }

  /** INT32 count then items; null (-1) is returned as null. Counts are sanity-checked. */
  nullableArray<T>(item: (r: Reader) => T): T[] | null {
    const count = this.int32();
    if (count === -1) return null;
    if (count < -1 || count > this.remaining) throw malformed('bad array length', { count });
    const out: T[] = [];
    for (let i = 0; i < count; i++) out.push(item(this));
    return out;
  }
  array<T>(item: (r: Reader) => T): T[] {
    return this.nullableArray(item) ?? [];
  }

  /** Tagged fields (KIP-482): this broker knows none, so each is skipped by its size. */
  skipTaggedFields(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint();
      this.raw(this.uvarint());
    }
  }
}
