import { describe, expect, it } from 'vitest';
import { Reader } from './reader.js';
import { Writer } from './writer.js';
import { readRequestHeader } from './header.js';

describe('varints', () => {
  it('encodes unsigned varints as LEB128', () => {
    expect(new Writer().uvarint(0).toBuffer()).toEqual(Buffer.from([0x00]));
    expect(new Writer().uvarint(127).toBuffer()).toEqual(Buffer.from([0x7f]));
    expect(new Writer().uvarint(300).toBuffer()).toEqual(Buffer.from([0xac, 0x02]));
    expect(new Writer().uvarint(2 ** 31).toBuffer()).toEqual(
      Buffer.from([0x80, 0x80, 0x80, 0x80, 0x08]),
    );
  });

  it('zig-zags signed varints (record format)', () => {
    expect(new Writer().varint(-1).toBuffer()).toEqual(Buffer.from([0x01]));
    expect(new Writer().varint(1).toBuffer()).toEqual(Buffer.from([0x02]));
    expect(new Writer().varint(-64).toBuffer()).toEqual(Buffer.from([0x7f]));
    expect(new Writer().varint(64).toBuffer()).toEqual(Buffer.from([0x80, 0x01]));
  });

  it('round-trips varints and varlongs', () => {
    for (const n of [
      0,
      1,
      -1,
      63,
      -64,
      64,
      1000,
      -1000,
      2 ** 30,
      -(2 ** 30),
      2147483647,
      -2147483648,
    ]) {
      expect(new Reader(new Writer().varint(n).toBuffer()).varint()).toBe(n);
    }
    for (const n of [0, -1, 1_700_000_000_123, -1_700_000_000_123]) {
      expect(new Reader(new Writer().varint(n).toBuffer()).varlong()).toBe(n);
    }
  });

  it('refuses a varint that never ends', () => {
    expect(() => new Reader(Buffer.alloc(10, 0xff)).uvarint()).toThrow(/varint/);
  });
});

describe('Reader', () => {
  it('reads primitives and nullable strings and bytes', () => {
    const buf = new Writer()
      .int8(-2)
      .int16(-300)
      .int32(70000)
      .int64(1_700_000_000_123)
      .string('hé')
      .string(null)
      .bytes(Buffer.from([1, 2]))
      .bytes(null)
      .toBuffer();
    const r = new Reader(buf);
    expect([
      r.int8(),
      r.int16(),
      r.int32(),
      r.int64(),
      r.string(),
      r.nullableString(),
      r.bytes(),
      r.nullableBytes(),
    ]).toEqual([-2, -300, 70000, 1_700_000_000_123, 'hé', null, Buffer.from([1, 2]), null]);
    expect(r.remaining).toBe(0);
  });

  it('throws MALFORMED_MESSAGE instead of reading past the frame', () => {
    const r = new Reader(Buffer.from([0x00, 0x05, 0x61]));
    expect(() => r.string()).toThrow(
      expect.objectContaining({ code: 'MALFORMED_MESSAGE' }) as Error,
    );
    expect(() =>
      new Reader(new Writer().int32(1_000_000).toBuffer()).array((x) => x.int32()),
    ).toThrow(/array length/);
  });

  it('skips unknown tagged fields by their size', () => {
    const buf = new Writer()
      .uvarint(2)
      .uvarint(0)
      .uvarint(3)
      .raw(Buffer.from('abc'))
      .uvarint(5)
      .uvarint(1)
      .int8(9)
      .int16(77)
      .toBuffer();
    const r = new Reader(buf);
    r.skipTaggedFields();
    expect(r.int16()).toBe(77);
  });
});

describe('Writer', () => {
  it('keeps every byte when small writes swap in a new scratch buffer (regression: Fetch "Invalid array length")', () => {
    const w = new Writer();
    const expected: number[] = [];
    for (let i = 0; i < 3000; i++) {
      w.int32(i);
      w.raw(Buffer.alloc(3, i & 0xff));
      expected.push(i);
    }
    const r = new Reader(w.toBuffer());
    for (const i of expected) {
      expect(r.int32()).toBe(i);
      expect([...r.raw(3)]).toEqual([i & 0xff, i & 0xff, i & 0xff]);
    }
    expect(w.length).toBe(3000 * 7);
  });

  it('passes large buffers through without copying', () => {
    const big = Buffer.alloc(4096, 7);
    const chunks = new Writer().int32(big.length).raw(big).int8(1).toChunks();
    expect(chunks).toContain(big);
  });
});

describe('request header', () => {
  it('decodes a hand-built Metadata v1 request frame', () => {
    const frame = Buffer.from([
      0x00,
      0x03, // api_key 3 (Metadata)
      0x00,
      0x01, // api_version 1
      0x00,
      0x00,
      0x00,
      0x2a, // correlation_id 42
      0x00,
      0x03,
      0x63,
      0x6c,
      0x69, // client_id "cli"
      0x00,
      0x00,
      0x00,
      0x01,
      0x00,
      0x01,
      0x74, // topics ["t"]
    ]);
    const r = new Reader(frame);
    expect(readRequestHeader(r)).toEqual({
      apiKey: 3,
      apiVersion: 1,
      correlationId: 42,
      clientId: 'cli',
    });
    expect(r.nullableArray((x) => x.string())).toEqual(['t']);
  });
});
