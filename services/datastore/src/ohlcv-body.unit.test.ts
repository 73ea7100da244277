import { gunzipSync } from 'node:zlib';
import type { Bar } from '@candlestream/core';
import { MINUTE_MS, toIso } from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import type { Piece } from './ohlcv-body.js';
import { assemble, barsPiece, contentTag, pagePiece, renderPage } from './ohlcv-body.js';

const T0 = Date.UTC(2026, 0, 5);

function bars(n: number, from = T0, seed = 1): Bar[] {
  let x = seed;
  const next = (): number => (x = (x * 48_271) % 2_147_483_647) / 2_147_483_647;
  return Array.from({ length: n }, (_, i) => ({
    time: from + i * MINUTE_MS,
    open: 37_000 + next() * 100,
    high: 37_100 + next(),
    low: 36_900 - next(),
    close: 37_000.5,
    volume: i % 3 === 0 ? 0 : next() / 7,
  }));
}

/** The answer as the route wrote it before pieces: res.json of the mapped bars. */
function reference(list: readonly Bar[], partial: boolean): string {
  return JSON.stringify({
    symbol: 'BTC-USD',
    interval: '1m',
    bars: list.map((b) => ({
      time: toIso(b.time),
      open: b.open,
      high: b.high,
      low: b.low,
      close: b.close,
      volume: b.volume,
    })),
    partial,
  });
}

const HEAD = '{"symbol":"BTC-USD","interval":"1m","bars":[';
const tail = (partial: boolean): string => `],"partial":${String(partial)}}`;

describe('an /ohlcv answer from prepared pages', () => {
  it('is byte for byte the JSON the route wrote before, whole pages, slices and fresh bars alike', () => {
    const all = bars(400);
    const pages = [renderPage(all.slice(0, 120)), renderPage(all.slice(120, 240))];
    const fresh = all.slice(240, 400);
    for (const [from, to] of [
      [T0, T0 + 400 * MINUTE_MS],
      [T0 + 17 * MINUTE_MS, T0 + 400 * MINUTE_MS],
      [T0 + 119 * MINUTE_MS, T0 + 121 * MINUTE_MS],
      [T0 + 5 * MINUTE_MS, T0 + 6 * MINUTE_MS],
      [T0 + 120 * MINUTE_MS, T0 + 240 * MINUTE_MS],
    ] as const) {
      const pieces: Piece[] = [];
      for (const page of pages) {
        const piece = pagePiece(page, from, to);
        if (piece) pieces.push(piece);
      }
      const rest = fresh.filter((b) => b.time >= from && b.time < to);
      const restPiece = barsPiece(rest);
      if (restPiece) pieces.push(restPiece);
      const expected = reference(
        all.filter((b) => b.time >= from && b.time < to),
        false,
      );
      expect(assemble(HEAD, pieces, tail(false), false).toString(), `${from}`).toBe(expected);
      expect(gunzipSync(assemble(HEAD, pieces, tail(false), true)).toString(), `${from}`).toBe(
        expected,
      );
    }
  });

  it('uses a whole page as its deflate segment, a slice as its own bytes', () => {
    const page = renderPage(bars(120));
    expect(pagePiece(page, T0, T0 + 120 * MINUTE_MS)).toEqual({ page });
    const slice = pagePiece(page, T0 + MINUTE_MS, T0 + 3 * MINUTE_MS);
    expect(slice && 'raw' in slice && JSON.parse(`[${slice.raw.toString()}]`)).toHaveLength(2);
    expect(pagePiece(page, T0 + 200 * MINUTE_MS, T0 + 300 * MINUTE_MS)).toBeUndefined();
  });

  it('writes an empty answer and one with no pages, plain and gzipped', () => {
    for (const pieces of [[], [barsPiece(bars(3))!]]) {
      const list = pieces.length === 0 ? [] : bars(3);
      expect(assemble(HEAD, pieces, tail(true), false).toString()).toBe(reference(list, true));
      expect(gunzipSync(assemble(HEAD, pieces, tail(true), true)).toString()).toBe(
        reference(list, true),
      );
    }
  });

  it('gzips answers larger than one stored block (64 KiB of per-request bytes)', () => {
    const list = bars(3_000);
    const pieces = [barsPiece(list)!];
    expect(pieces[0] && 'raw' in pieces[0] && pieces[0].raw.length).toBeGreaterThan(0xffff);
    expect(gunzipSync(assemble(HEAD, pieces, tail(false), true)).toString()).toBe(
      reference(list, false),
    );
  });

  it('compresses whole pages: a day of minutes gzips to well under its size', () => {
    const pages = Array.from({ length: 12 }, (_, i) =>
      renderPage(bars(120, T0 + i * 120 * MINUTE_MS, i + 1)),
    );
    const pieces = pages.map((page) => ({ page }));
    const plain = assemble(HEAD, pieces, tail(false), false);
    const gz = assemble(HEAD, pieces, tail(false), true);
    expect(gunzipSync(gz).equals(plain)).toBe(true);
    expect(gz.length).toBeLessThan(plain.length / 2);
  });

  it("tags answers by their range, their pages' content and the bytes rendered for them", () => {
    const a = renderPage(bars(120));
    const b = renderPage(bars(120, T0, 2));
    expect(contentTag('BTC-USD 1m 0 1', [a], [])).toBe(
      contentTag('BTC-USD 1m 0 1', [renderPage(bars(120))], []),
    );
    expect(contentTag('BTC-USD 1m 0 1', [a], [])).not.toBe(contentTag('BTC-USD 1m 0 1', [b], []));
    expect(contentTag('BTC-USD 1m 0 1', [a], [])).not.toBe(contentTag('BTC-USD 1m 0 2', [a], []));
    const rest = barsPiece(bars(3))!;
    const other = barsPiece(bars(3, T0, 9))!;
    expect(contentTag('k', [a], [rest])).toBe(contentTag('k', [a], [barsPiece(bars(3))!]));
    expect(contentTag('k', [a], [rest])).not.toBe(contentTag('k', [a], [other]));
    expect(contentTag('k', [a], [rest])).not.toBe(contentTag('k', [a], []));
  });
});
