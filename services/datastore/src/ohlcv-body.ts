import { createHash } from 'node:crypto';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import type { Bar, EpochMs } from '@candlestream/core';
import { wireBar } from './stream/protocol.js';

/**
 * `/ohlcv` answers built from prepared bytes. A closed page of bars is rendered to JSON once and
 * deflated once; an answer is the pages' bytes joined, with only its head, its edges and the
 * forming bar rendered per request. Compressed answers are real gzip streams assembled from the
 * pages' deflate segments: each segment ends on a sync flush (byte-aligned, not final), per-request
 * bytes travel as stored (uncompressed) deflate blocks, and one CRC-32 covers the whole.
 */

/** One bar as `/ohlcv` writes it; the key order is the answer's. */
export function barJson(bar: Bar): string {
  return JSON.stringify(wireBar(bar));
}

/** Closed bars rendered and deflated once. */
export interface BarPage {
  /** Open times of its bars, ascending. */
  readonly times: Float64Array;
  /** The bars as JSON objects joined by commas (no brackets). */
  readonly raw: Buffer;
  /** Byte offset of each bar in `raw`, and raw's length last (times.length + 1 entries). */
  readonly offsets: Uint32Array;
  /** `raw` as one raw-deflate segment ending on a sync flush. */
  readonly deflated: Buffer;
  /** Identifies the content (CRC-32 and length of raw), for ETags. */
  readonly tag: string;
}

export function renderPage(bars: readonly Bar[]): BarPage {
  const parts = bars.map(barJson);
  const offsets = new Uint32Array(parts.length + 1);
  let at = 0;
  for (const [i, part] of parts.entries()) {
    offsets[i] = at;
    at += Buffer.byteLength(part) + (i < parts.length - 1 ? 1 : 0);
  }
  offsets[parts.length] = at;
  const raw = Buffer.from(parts.join(','));
  return {
    times: Float64Array.from(bars, (b) => b.time),
    raw,
    offsets,
    deflated: deflateRawSync(raw, { finishFlush: constants.Z_SYNC_FLUSH }),
    tag: `${crc32(raw).toString(16)}.${raw.length.toString(16)}`,
  };
}

/** Part of an answer's bar list: a whole prepared page, or bytes of this request alone. */
export type Piece = { page: BarPage } | { raw: Buffer };

function firstAtOrAfter(times: Float64Array, t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (times[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The page's bars opening in [from, to): the page itself when it lies inside, else a slice. */
export function pagePiece(page: BarPage, from: EpochMs, to: EpochMs): Piece | undefined {
  const start = firstAtOrAfter(page.times, from);
  const end = firstAtOrAfter(page.times, to);
  if (end <= start) return undefined;
  if (start === 0 && end === page.times.length) return { page };
  // A slice drops the comma that followed its last bar inside the page.
  const stop = end === page.times.length ? page.offsets[end]! : page.offsets[end]! - 1;
  return { raw: page.raw.subarray(page.offsets[start], stop) };
}

export function barsPiece(bars: readonly Bar[]): Piece | undefined {
  return bars.length === 0 ? undefined : { raw: Buffer.from(bars.map(barJson).join(',')) };
}

const COMMA = Buffer.from(',');
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff]);
/** An empty final stored block: ends the deflate stream. */
const DEFLATE_END = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);
const STORED_BLOCK_MAX = 0xffff;

/** Bytes as non-final stored deflate blocks: no compression work, valid after a sync flush. */
function storedBlocks(bytes: Buffer, out: Buffer[]): void {
  for (let at = 0; at < bytes.length; at += STORED_BLOCK_MAX) {
    const part = bytes.subarray(at, at + STORED_BLOCK_MAX);
    const header = Buffer.alloc(5);
    header.writeUInt16LE(part.length, 1);
    header.writeUInt16LE(~part.length & 0xffff, 3);
    out.push(header, part);
  }
}

/** `head` + the pieces joined by commas + `tail`, as identity bytes or a gzip stream. */
export function assemble(
  head: string,
  pieces: readonly Piece[],
  tail: string,
  gzip: boolean,
): Buffer {
  const segments: { raw: Buffer; deflated?: Buffer }[] = [{ raw: Buffer.from(head) }];
  for (const [i, piece] of pieces.entries()) {
    if (i > 0) segments.push({ raw: COMMA });
    segments.push('page' in piece ? piece.page : piece);
  }
  segments.push({ raw: Buffer.from(tail) });
  if (!gzip) return Buffer.concat(segments.map((s) => s.raw));

  const out: Buffer[] = [GZIP_HEADER];
  let crc = 0;
  let size = 0;
  let pending: Buffer[] = [];
  const flushPending = (): void => {
    if (pending.length > 0) storedBlocks(Buffer.concat(pending), out);
    pending = [];
  };
  for (const { raw, deflated } of segments) {
    crc = crc32(raw, crc);
    size += raw.length;
    if (deflated) {
      flushPending();
      out.push(deflated);
    } else pending.push(raw);
  }
  flushPending();
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(size >>> 0, 4);
  out.push(DEFLATE_END, trailer);
  return Buffer.concat(out);
}

/**
 * Identifies an answer's bars: the request's key, the pages' content tags, and the CRC-32 and
 * length of the bytes rendered for this request. Hashing the whole answer instead (express's
 * ETag) cost more than assembling it.
 */
export function contentTag(
  key: string,
  pages: readonly BarPage[],
  rendered: readonly Piece[],
): string {
  const hash = createHash('sha1').update(key);
  for (const page of pages) hash.update(page.tag);
  for (const piece of rendered) {
    const raw = 'page' in piece ? piece.page.raw : piece.raw;
    hash.update(`|${crc32(raw).toString(16)}.${raw.length.toString(16)}`);
  }
  return hash.digest('base64url');
}
