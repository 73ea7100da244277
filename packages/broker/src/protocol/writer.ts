const SCRATCH_BYTES = 4096;
/** Raw buffers at least this large are kept by reference rather than copied (record batches). */
const ZERO_COPY_MIN_BYTES = 512;

/**
 * Encoder for the Kafka protocol primitive types. Output is a list of chunks so that stored record
 * batches go to the socket without being copied into one big response buffer.
 */
export class Writer {
  private readonly chunks: Buffer[] = [];
  private scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private pos = 0;
  private flushedBytes = 0;

  get length(): number {
    return this.flushedBytes + this.pos;
  }

  private flushScratch(): void {
    if (this.pos === 0) return;
    this.chunks.push(this.scratch.subarray(0, this.pos));
    this.flushedBytes += this.pos;
    this.scratch = this.scratch.subarray(this.pos);
    this.pos = 0;
  }

  private room(bytes: number): number {
    if (this.pos + bytes > this.scratch.length) {
      this.flushScratch();
      this.scratch = Buffer.allocUnsafe(Math.max(SCRATCH_BYTES, bytes));
    }
    const at = this.pos;
    this.pos += bytes;
    return at;
  }

  int8(value: number): this {
    const at = this.room(1);
    this.scratch.writeInt8(value, at);
    return this;
  }
  bool(value: boolean): this {
    return this.int8(value ? 1 : 0);
  }
  int16(value: number): this {
    const at = this.room(2);
    this.scratch.writeInt16BE(value, at);
    return this;
  }
  int32(value: number): this {
    const at = this.room(4);
    this.scratch.writeInt32BE(value, at);
    return this;
  }
  int64(value: number | bigint): this {
    const at = this.room(8);
    this.scratch.writeBigInt64BE(BigInt(value), at);
    return this;
  }
  uvarint(value: number): this {
    let rest = value;
    while (rest >= 0x80) {
      const at = this.room(1);
      this.scratch[at] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    const at = this.room(1);
    this.scratch[at] = rest;
    return this;
  }
  varint(value: number): this {
    return this.uvarint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  raw(data: Buffer): this {
    if (data.length >= ZERO_COPY_MIN_BYTES) {
      this.flushScratch();
      this.chunks.push(data);
      this.flushedBytes += data.length;
    } else if (data.length > 0) {
      // room() may swap in a new scratch buffer, so take the position before naming the buffer.
      const at = this.room(data.length);
      data.copy(this.scratch, at);
    }
    return this;
  }

  string(value: string | null): this {
    if (value === null) return this.int16(-1);
    const data = Buffer.from(value, 'utf8');
    return this.int16(data.length).raw(data);
  }
  bytes(value: Buffer | null): this {
    if (value === null) return this.int32(-1);
    return this.int32(value.length).raw(value);
  }
  compactString(value: string | null): this {
    if (value === null) return this.uvarint(0);
    const data = Buffer.from(value, 'utf8');
    return this.uvarint(data.length + 1).raw(data);
  }
  array<T>(items: readonly T[] | null, item: (w: Writer, value: T, index: number) => void): this {
    if (items === null) return this.int32(-1);
    this.int32(items.length);
    items.forEach((value, index) => item(this, value, index));
    return this;
  }
  compactArray<T>(items: readonly T[], item: (w: Writer, value: T) => void): this {
    this.uvarint(items.length + 1);
    for (const value of items) item(this, value);
    return this;
  }
  /** An empty tagged-field section (KIP-482). */
  noTaggedFields(): this {
    return this.uvarint(0);
  }

  toChunks(): Buffer[] {
    this.flushScratch();
    return this.chunks;
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.toChunks());
  }
}
