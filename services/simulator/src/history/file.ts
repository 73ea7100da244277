/**
 * Replays a trade file (CSV or NDJSON, optionally gzipped) with the producer's parser, so a file
 * the producer accepts replays the same trades (bad lines skipped and logged there). A file is
 * expected in time order; small disorder (trades of two feeds interleaved, ties written in any
 * id order) is repaired inside a bounded reorder window, and a trade older than one already
 * emitted is dropped and counted: emitting it would break the (ts, id, symbol) order the replay
 * engine and every consumer rely on.
 */
import type { EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { TradeFileFormat } from '@candlestream/producer';
import { createFileSource } from '@candlestream/producer';
import type { HistorySource, ReplayRange } from '../replay/types.js';
import { compareReplay, MinHeap, positiveCount } from './order.js';
import { DEFAULT_PAGE_TRADES } from './stored.js';

/**
 * Trades held back for reordering: a trade is emitted once this many later-read trades are held.
 * 10,000 trades is seconds of a busy market and about 2 MB.
 */
export const DEFAULT_REORDER_WINDOW_TRADES = 10_000;

export interface FileHistoryOptions {
  /** `.csv`, `.ndjson` or `.jsonl`, optionally `.gz` (the producer's file source). */
  path: string;
  logger: Logger;
  /** Default: from the extension. */
  format?: TradeFileFormat;
  /** Every trade is for this symbol, whatever (if anything) the file says. */
  symbolOverride?: MarketSymbol;
  /** At most this many trades per page. Default DEFAULT_PAGE_TRADES. */
  pageTrades?: number;
  /** Default DEFAULT_REORDER_WINDOW_TRADES. */
  reorderWindowTrades?: number;
}

/**
 * Every call of `pages` reads the file again from its first line (a seek is a new read) and
 * skips what is before `from`. Reading stops `reorderWindowTrades` trades after the first trade at
 * or past `range.to`: a trade further on than that would be outside the window anyway.
 */
export function fileHistory(options: FileHistoryOptions): HistorySource {
  const pageTrades = positiveCount('pageTrades', options.pageTrades ?? DEFAULT_PAGE_TRADES);
  const windowTrades = positiveCount(
    'reorderWindowTrades',
    options.reorderWindowTrades ?? DEFAULT_REORDER_WINDOW_TRADES,
  );
  const log = options.logger.child({ component: 'history-file' });
  // Built once: an unknown format is refused here, before any replay starts.
  const source = createFileSource({
    path: options.path,
    logger: log,
    ...(options.format ? { format: options.format } : {}),
    ...(options.symbolOverride ? { symbolOverride: options.symbolOverride } : {}),
  });

  async function* pages(
    range: ReplayRange,
    from: EpochMs,
    signal: AbortSignal,
  ): AsyncGenerator<readonly Tick[]> {
    const symbols = new Set(range.symbols);
    const start = Math.max(range.from, from);
    const end = range.to;
    if (symbols.size === 0 || start >= end || signal.aborted) return;

    const window = new MinHeap<Tick>(compareReplay);
    const counts = { pages: 0, trades: 0, late: 0 };
    let lastEmitted: Tick | undefined;
    /** Trades read since the first one at or after `end`, once there was one. */
    let pastEnd: number | undefined;
    let page: Tick[] = [];
    let ended: string | undefined;
    const startedMs = performance.now();

    /** Moves the smallest held trade to the page; returns the page when it is full. */
    const emit = (): Tick[] | undefined => {
      const trade = window.pop();
      if (trade === undefined) return undefined;
      lastEmitted = trade;
      page.push(trade);
      if (page.length < pageTrades) return undefined;
      const full = page;
      page = [];
      counts.pages++;
      counts.trades += full.length;
      return full;
    };

    try {
      for await (const trade of source.trades({ signal })) {
        if (signal.aborted) return;
        if (pastEnd !== undefined && ++pastEnd > windowTrades) break;
        if (trade.ts >= end) {
          pastEnd ??= 0;
          continue;
        }
        if (trade.ts < start || !symbols.has(trade.symbol)) continue;
        if (lastEmitted && compareReplay(trade, lastEmitted) < 0) {
          counts.late++;
          continue;
        }
        window.push(trade);
        if (window.size > windowTrades) {
          const full = emit();
          if (full) yield full;
        }
      }
      // The window can hold many pages (the whole range of a small file): drain it page by page.
      while (window.size > 0) {
        if (signal.aborted) return;
        const full = emit();
        if (full) yield full;
      }
      if (signal.aborted) return;
      if (page.length > 0) {
        counts.pages++;
        counts.trades += page.length;
        yield page;
      }
      ended = 'end-of-range';
    } catch (err) {
      ended = 'failed';
      throw err;
    } finally {
      // One line per read, with the late count: a badly ordered file is named once, not per trade.
      const fields = {
        path: options.path,
        from: start,
        to: end,
        ended: ended ?? (signal.aborted ? 'aborted' : 'stopped'),
        ...counts,
        reorderWindowTrades: windowTrades,
        durationMs: Math.round(performance.now() - startedMs),
      };
      if (counts.late > 0) log.warn('file history read; late trades dropped', fields);
      else log.info('file history read', fields);
    }
  }

  return { kind: `file:${options.path}`, pages };
}
