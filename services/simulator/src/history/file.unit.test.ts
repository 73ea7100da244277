import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import { AppError, encodeTick } from '@candlestream/core';
import { makeTick, randomTicks, seededRandom } from '@candlestream/core/testing';
import type { LogLine } from '@candlestream/logger';
import { recordingLogger } from '@candlestream/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplayRange } from '../replay/types.js';
import type { FileHistoryOptions } from './file.js';
import { fileHistory } from './file.js';
import { compareReplay } from './order.js';

const BTC = 'BTC-USD' as MarketSymbol;
const ETH = 'ETH-USD' as MarketSymbol;
const SOL = 'SOL-USD' as MarketSymbol;
const T0 = Date.UTC(2024, 0, 1, 12);
const ALL: ReplayRange = { symbols: [BTC, ETH], from: T0, to: T0 + 3_600_000 };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'candlestream-file-history-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileNumber = 0;
async function ndjson(trades: readonly Tick[], gzip = false): Promise<string> {
  const path = join(dir, `trades-${fileNumber++}.ndjson${gzip ? '.gz' : ''}`);
  const text = trades.map((t) => encodeTick(t)).join('\n') + '\n';
  await writeFile(path, gzip ? gzipSync(text) : text);
  return path;
}

async function replay(
  options: Omit<FileHistoryOptions, 'logger'>,
  range: ReplayRange = ALL,
  from: EpochMs = range.from,
): Promise<{ trades: Tick[]; pageSizes: number[]; lines: LogLine[] }> {
  const { logger, lines } = recordingLogger();
  const trades: Tick[] = [];
  const pageSizes: number[] = [];
  const source = fileHistory({ ...options, logger });
  for await (const page of source.pages(range, from, new AbortController().signal)) {
    pageSizes.push(page.length);
    trades.push(...page);
  }
  return { trades, pageSizes, lines };
}

/** What the producer's parser yields for a trade: the same trade, source 'file'. */
const asRead = (t: Tick): Tick => ({ ...t, source: 'file' });
const sorted = (trades: readonly Tick[]): Tick[] => [...trades].map(asRead).sort(compareReplay);

describe('fileHistory', () => {
  const trades = randomTicks({
    seed: 3,
    count: 2_000,
    from: T0,
    spanMs: 3_600_000,
    symbols: [BTC, ETH, SOL],
    tsStepMs: 1_000, // same-millisecond ties within and across symbols
  });

  it('yields the range symbols in (ts, id, symbol) order, in bounded pages, gzipped or not', async () => {
    for (const gzip of [false, true]) {
      const path = await ndjson(trades, gzip);
      const { trades: out, pageSizes, lines } = await replay({ path, pageTrades: 64 });
      expect(out).toEqual(sorted(trades.filter((t) => t.symbol !== SOL)));
      expect(Math.max(...pageSizes)).toBeLessThanOrEqual(64);
      expect(pageSizes.length).toBe(Math.ceil(out.length / 64));
      const done = lines.find((l) => l.msg === 'file history read');
      expect(done?.fields).toMatchObject({ ended: 'end-of-range', late: 0, trades: out.length });
    }
  });

  it('keeps to [from, to) and stops reading a window after the end', async () => {
    const path = await ndjson(trades);
    const range: ReplayRange = { symbols: [ETH], from: T0 + 600_000, to: T0 + 1_200_000 };
    const { trades: out, lines } = await replay({ path, reorderWindowTrades: 10 }, range);
    expect(out).toEqual(
      sorted(trades.filter((t) => t.symbol === ETH && t.ts >= range.from && t.ts < range.to)),
    );
    // The parser's own summary: it stopped, not at the end of the file.
    const parsed = lines.find((l) => l.msg === 'trades file read');
    expect(parsed?.fields?.['read']).toBeLessThan(trades.length);
  });

  it('reorders disorder within the window and drops, counts and logs once what is older', async () => {
    const ordered = Array.from({ length: 100 }, (_, i) =>
      makeTick({
        symbol: BTC,
        ts: T0 + i * 1_000,
        price: 100,
        id: `t${String(i).padStart(3, '0')}`,
      }),
    );
    // Swap neighbours (within any window of 2), and move two trades far later.
    const shuffled = [...ordered];
    for (let i = 0; i + 1 < 60; i += 2)
      [shuffled[i], shuffled[i + 1]] = [shuffled[i + 1]!, shuffled[i]!];
    const far = [ordered[70]!, ordered[71]!];
    const file = shuffled.filter((t) => !far.includes(t));
    file.push(...far); // arrive 28 trades late
    const path = await ndjson(file);
    const { trades: out, lines } = await replay({ path, reorderWindowTrades: 5, pageTrades: 7 });
    expect(out).toEqual(sorted(ordered.filter((t) => !far.includes(t))));
    const warnings = lines.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.fields).toMatchObject({ late: 2, reorderWindowTrades: 5 });
    // A window wide enough takes them back in place.
    const wide = await replay({ path, reorderWindowTrades: 40 });
    expect(wide.trades).toEqual(sorted(ordered));
    expect(wide.lines.filter((l) => l.level === 'warn')).toEqual([]);
  });

  it('orders ties in one millisecond by id in code-unit order, then symbol', async () => {
    const ts = T0 + 5_000;
    const file = ['b', 'a', '_x', 'B'].map((id) => makeTick({ symbol: BTC, ts, price: 1, id }));
    file.push(makeTick({ symbol: ETH, ts, price: 2, id: 'B' }));
    file.reverse();
    const { trades: out } = await replay({ path: await ndjson(file) });
    expect(out.map((t) => `${t.symbol}:${t.id}`)).toEqual([
      'BTC-USD:B',
      'ETH-USD:B',
      'BTC-USD:_x',
      'BTC-USD:a',
      'BTC-USD:b',
    ]);
  });

  it('starts a seek again from the file, at the first trade with ts >= from', async () => {
    const path = await ndjson(trades);
    const source = fileHistory({ path, logger: recordingLogger().logger, pageTrades: 100 });
    const all = sorted(trades.filter((t) => t.symbol !== SOL));
    const random = seededRandom(9);
    for (let i = 0; i < 5; i++) {
      const from = T0 + Math.floor(random() * 3_600) * 1_000; // on a tie millisecond
      const out: Tick[] = [];
      for await (const page of source.pages(ALL, from, new AbortController().signal))
        out.push(...page);
      expect(out).toEqual(all.filter((t) => t.ts >= from));
    }
  });

  it('reads CSV through the same parser, with a symbol override', async () => {
    const path = join(dir, 'trades.csv');
    await writeFile(
      path,
      `ts,price,size,id\n${T0 + 2},10,1,b\n${T0 + 1},11,2,a\n${T0 + 2},12,3,a\n`,
    );
    const { trades: out } = await replay({ path, symbolOverride: BTC });
    expect(out.map((t) => [t.ts - T0, t.id, t.price])).toEqual([
      [1, 'a', 11],
      [2, 'a', 12],
      [2, 'b', 10],
    ]);
  });

  it('stops when aborted, and refuses an unknown format up front', async () => {
    const path = await ndjson(trades);
    const source = fileHistory({ path, logger: recordingLogger().logger, pageTrades: 50 });
    const controller = new AbortController();
    let pages = 0;
    for await (const _ of source.pages(ALL, ALL.from, controller.signal)) {
      if (++pages === 2) controller.abort();
    }
    expect(pages).toBe(2);
    expect(() =>
      fileHistory({ path: join(dir, 'trades.txt'), logger: recordingLogger().logger }),
    ).toThrow(AppError);
  });
});
