import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tick } from '@candlestream/core';
import { AppError, decodeTick, encodeTick, parseSymbol } from '@candlestream/core';
import type { LogFields, LogLine } from '@candlestream/logger';
import { recordingLogger } from '@candlestream/logger';
import type { FileSourceOptions } from './file.js';
import { createFileSource } from './file.js';

const BTC = parseSymbol('BTC-USD');
const ETH = parseSymbol('ETH-USD');
const T0 = Date.UTC(2024, 0, 1, 12); // 1704110400000

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'candlestream-file-source-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fixture(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

async function read(
  path: string,
  extra: Partial<FileSourceOptions> = {},
): Promise<{ ticks: Tick[]; lines: LogLine[] }> {
  const { logger, lines } = recordingLogger();
  const ticks: Tick[] = [];
  const source = createFileSource({ path, logger, ...extra });
  for await (const t of source.trades({ signal: new AbortController().signal })) ticks.push(t);
  return { ticks, lines };
}

function tick(fields: Partial<Tick> & Pick<Tick, 'ts' | 'price' | 'size' | 'id'>): Tick {
  return { v: 1, symbol: BTC, side: 'unknown', source: 'file', ...fields };
}

const reasons = (lines: LogLine[]): unknown[] =>
  lines.filter((l) => l.level === 'warn').map((l) => l.fields?.['reason']);
const summary = (lines: LogLine[]): LogFields | undefined =>
  lines.find((l) => l.msg === 'trades file read')?.fields;

describe('file source', () => {
  it('reads CSV into exact ticks, in file order', async () => {
    const path = await fixture(
      'round.csv',
      [
        'symbol,ts,price,size,side,id',
        `BTC-USD,${T0},37000.5,0.01,buy,a1`,
        `ETH-USD,${T0 + 1},2000.25,1.5,sell,a2`,
        `BTC-USD,${T0 + 1},36999,0.00000001,,a3`,
      ].join('\n'),
    );
    const { ticks, lines } = await read(path);
    expect(ticks).toEqual([
      tick({ ts: T0, price: 37000.5, size: 0.01, side: 'buy', id: 'a1' }),
      tick({ symbol: ETH, ts: T0 + 1, price: 2000.25, size: 1.5, side: 'sell', id: 'a2' }),
      tick({ ts: T0 + 1, price: 36999, size: 0.00000001, id: 'a3' }),
    ]);
    expect(ticks.every((t) => decodeTick(encodeTick(t)).ok)).toBe(true);
    expect(summary(lines)).toMatchObject({ read: 3, yielded: 3, skipped: 0, ended: 'end-of-file' });
  });

  it('reads NDJSON, forcing source to file and ignoring unknown fields', async () => {
    const path = await fixture(
      'round.ndjson',
      [
        JSON.stringify({
          v: 1,
          symbol: 'BTC-USD',
          ts: T0,
          price: 37000.5,
          size: 0.01,
          side: 'buy',
          id: 'x',
          source: 'cryptocompare',
        }),
        JSON.stringify({
          symbol: 'ethusd',
          ts: T0 + 5,
          price: '2000.1',
          size: 2,
          id: 12345,
          venue: 'kraken',
        }),
        '',
        JSON.stringify({
          symbol: 'BTC/USD',
          ts: '2024-01-01T12:00:01Z',
          price: 1,
          size: 1,
          side: 'SELL',
        }),
      ].join('\n'),
    );
    const { ticks } = await read(path);
    expect(ticks).toEqual([
      tick({ ts: T0, price: 37000.5, size: 0.01, side: 'buy', id: 'x' }),
      tick({ symbol: ETH, ts: T0 + 5, price: 2000.1, size: 2, id: '12345' }),
      tick({ ts: T0 + 1000, price: 1, size: 1, side: 'sell', id: 'round.ndjson:000000004' }),
    ]);
  });

  it('accepts epoch ms, epoch seconds and ISO-8601 times', async () => {
    const times = [
      [`${T0}`, T0],
      [`${T0 / 1000}`, T0],
      [`${T0 / 1000}.123`, T0 + 123],
      ['2024-01-01T12:00:00.250Z', T0 + 250],
      ['2024-01-01T14:00:00+02:00', T0],
      ['2024-01-01T12:00:00', T0], // no zone: UTC
      ['2024-01-01 12:00:00', T0],
    ] as const;
    const path = await fixture(
      'times.csv',
      ['ts,symbol,price,size', ...times.map(([ts]) => `${ts},BTC-USD,1,1`)].join('\n'),
    );
    const { ticks } = await read(path);
    expect(ticks.map((t) => t.ts)).toEqual(times.map(([, ms]) => ms));
  });

  it('accepts the usual symbol spellings', async () => {
    const spellings = ['BTCUSD', 'btc-usd', 'BTC/USD', 'btc_usd', ' BTC-USD '];
    const path = await fixture(
      'symbols.csv',
      ['symbol,ts,price,size', ...spellings.map((s) => `${s},${T0},1,1`)].join('\n'),
    );
    const { ticks } = await read(path);
    expect(ticks.map((t) => t.symbol)).toEqual(spellings.map(() => BTC));
  });

  it('reads RFC 4180 quoting, columns in any order, CRLF and a BOM', async () => {
    const path = await fixture(
      'quoted.csv',
      '\uFEFF"id",size,"price",ts,symbol,note\r\n' +
        `"a,1",1,"37,000"x,${T0},BTC-USD,z\r\n` + // text after a quote: bad
        `"a,2",1,"37000",${T0},BTC-USD, "said ""hi"", left"\r\n` +
        `"say ""hi""",2, 5 ,${T0},"BTC/USD",\r\n`,
    );
    const { ticks, lines } = await read(path);
    expect(ticks).toEqual([
      tick({ ts: T0, price: 37000, size: 1, id: 'a,2' }),
      tick({ ts: T0, price: 5, size: 2, id: 'say "hi"' }),
    ]);
    expect(reasons(lines)).toEqual(['line 2: text after a closing quote']);
  });

  it('skips bad lines with their line number and reason, and yields the rest', async () => {
    const path = await fixture(
      'bad.csv',
      [
        'symbol,ts,price,size,side',
        `BTC-USD,${T0},1,1,buy`,
        `BTC-USD,${T0},-3,1,buy`,
        `BTC-USD,${T0},1,,buy`,
        `NOPE,${T0},1,1,buy`,
        `BTC-USD,yesterday,1,1,buy`,
        `BTC-USD,123,1,1,buy`,
        `BTC-USD,${T0},1,1,long`,
        `BTC-USD,${T0},1,1`,
        `BTC-USD,${T0},0x10,1,buy`,
        `"BTC-USD,${T0},1,1,buy`,
        `BTC-USD,${T0 + 1},2,1,sell`,
      ].join('\n'),
    );
    const { ticks, lines } = await read(path);
    expect(ticks.map((t) => [t.ts, t.price])).toEqual([
      [T0, 1],
      [T0 + 1, 2],
    ]);
    expect(reasons(lines)).toEqual([
      'line 3: price "-3" must be a positive number',
      'line 4: size is missing',
      'line 5: symbol "NOPE" has no separator and no known quote currency; write it as BASE-QUOTE',
      'line 6: ts "yesterday" is not epoch ms, epoch seconds or ISO-8601',
      'line 7: ts "123" reads as 1970-01-01T00:02:03.000Z, not between 2009-01-03 and 2100',
      'line 8: side "long" must be buy, sell or unknown',
      'line 9: has 4 fields, the header has 5',
      'line 10: price "0x10" must be a positive number',
      'line 11: unterminated quoted field',
    ]);
    expect(summary(lines)).toMatchObject({ read: 11, yielded: 2, skipped: 9 });
  });

  it('skips bad NDJSON lines', async () => {
    const path = await fixture(
      'bad.jsonl',
      [
        '{"symbol":"BTC-USD",',
        '[1,2]',
        JSON.stringify({ v: 2, symbol: 'BTC-USD', ts: T0, price: 1, size: 1 }),
        JSON.stringify({ symbol: 'BTC-USD', ts: T0, price: 1, size: 1, side: 'buy' }),
        JSON.stringify({ symbol: 7, ts: T0, price: 1, size: 1 }),
        JSON.stringify({ symbol: 'BTC-USD', ts: T0, price: 1, size: 1, id: 'x'.repeat(129) }),
      ].join('\n'),
    );
    const { ticks, lines } = await read(path);
    expect(ticks).toEqual([
      tick({ ts: T0, price: 1, size: 1, side: 'buy', id: 'bad.jsonl:000000004' }),
    ]);
    const got = reasons(lines) as string[];
    expect(got).toHaveLength(5);
    expect(got[0]).toMatch(/^line 1: invalid JSON \(/);
    expect(got.slice(1)).toEqual([
      'line 2: is not a JSON object',
      'line 3: v 2 is not 1',
      'line 5: symbol 7 must be a string',
      'line 6: id length must be less than or equal to 128 characters long',
    ]);
  });

  it('logs the first 20 bad lines, then one suppression line, and counts them all', async () => {
    const bad = Array.from({ length: 25 }, () => `BTC-USD,${T0},0,1`);
    const path = await fixture('many.csv', ['symbol,ts,price,size', ...bad].join('\n'));
    const { ticks, lines } = await read(path);
    expect(ticks).toEqual([]);
    const warns = lines.filter((l) => l.level === 'warn');
    expect(warns).toHaveLength(21);
    expect(warns[19]!.fields?.['reason']).toBe('line 21: price "0" must be a positive number');
    expect(warns[20]!.msg).toBe('further bad lines suppressed');
    expect(summary(lines)).toMatchObject({ read: 25, yielded: 0, skipped: 25 });
  });

  it('gives id-less trades ids from file name and line, the same on every read', async () => {
    const path = await fixture(
      'noids.csv',
      [
        'symbol,ts,price,size',
        '',
        ...Array.from({ length: 12 }, (_, i) => `BTC-USD,${T0 + i},1,1`),
      ].join('\n'),
    );
    const first = (await read(path)).ticks.map((t) => t.id);
    const second = (await read(path)).ticks.map((t) => t.id);
    expect(first.slice(0, 2)).toEqual(['noids.csv:000000003', 'noids.csv:000000004']);
    expect(first.at(-1)).toBe('noids.csv:000000014');
    expect(second).toEqual(first);
    expect([...first].sort()).toEqual(first); // id order is file order
  });

  it('puts every trade on symbolOverride, with or without a symbol column', async () => {
    const path = await fixture('nosymbol.csv', `ts,price,size\n${T0},5,1\n`);
    const { ticks } = await read(path, { symbolOverride: ETH });
    expect(ticks).toEqual([
      tick({ symbol: ETH, ts: T0, price: 5, size: 1, id: 'nosymbol.csv:000000002' }),
    ]);
    await expect(read(path)).rejects.toThrow('the CSV header has no symbol column');
  });

  it('reads gzipped files and honours an explicit format', async () => {
    const content = `symbol,ts,price,size,id\nBTC-USD,${T0},1,2,g1\n`;
    const gz = await read(await fixture('trades.csv.gz', gzipSync(content)));
    expect(gz.ticks).toEqual([tick({ ts: T0, price: 1, size: 2, id: 'g1' })]);
    const txt = await read(await fixture('trades.txt', content), { format: 'csv' });
    expect(txt.ticks).toEqual(gz.ticks);
    expect(() =>
      createFileSource({ path: 'trades.txt', logger: recordingLogger().logger }),
    ).toThrow(/cannot tell the format/);
  });

  it('fails with a non-retriable INVALID_ARGUMENT when the file cannot be read', async () => {
    const missing = join(dir, 'absent.csv');
    const error = await read(missing).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', retriable: false });
    expect((error as AppError).message).toMatch(
      new RegExp(`^cannot read trades file ${missing}: ENOENT`),
    );
    const corrupt = await fixture('corrupt.csv.gz', 'not gzip\n');
    await expect(read(corrupt)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('stops reading when the signal aborts or the reader stops', async () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => `BTC-USD,${T0 + i},1,1`);
    const path = await fixture('long.csv', ['symbol,ts,price,size', ...rows].join('\n'));
    const { logger, lines } = recordingLogger();
    const controller = new AbortController();
    const source = createFileSource({ path, logger });
    const seen: Tick[] = [];
    for await (const t of source.trades({ signal: controller.signal })) {
      seen.push(t);
      if (seen.length === 5) controller.abort();
    }
    expect(seen).toHaveLength(5);
    expect(summary(lines)).toMatchObject({ yielded: 5, ended: 'aborted' });
    for await (const _ of source.trades({ signal: new AbortController().signal })) break;
    expect(lines.filter((l) => l.msg === 'trades file read').at(-1)?.fields).toMatchObject({
      yielded: 1,
      ended: 'stopped',
    });
  });
});
