import { parseArgs } from 'node:util';
import type { EpochMs, MarketSymbol } from '@candlestream/core';
import { AppError, parseInstant, parseSymbol, toIso } from '@candlestream/core';

export interface RebuildArgs {
  symbol: MarketSymbol;
  from: EpochMs;
  /** Exclusive. */
  to: EpochMs;
}

/** pnpm's own `rebuild` command shadows a script of that name, hence `pnpm run`. */
export const REBUILD_USAGE = 'usage: pnpm run rebuild --symbol S --from ISO --to ISO';

/** Reads `pnpm rebuild`'s arguments; a bad one is an INVALID_ARGUMENT error with one line. */
export function parseRebuildArgs(argv: readonly string[]): RebuildArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        symbol: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new AppError('INVALID_ARGUMENT', `${(err as Error).message}; ${REBUILD_USAGE}`);
  }
  const text = (name: string): string => {
    const value = values[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new AppError('INVALID_ARGUMENT', `--${name} is required; ${REBUILD_USAGE}`);
    }
    return value;
  };
  let symbol: MarketSymbol;
  try {
    symbol = parseSymbol(text('symbol'));
  } catch (err) {
    throw new AppError('INVALID_ARGUMENT', `--symbol: ${(err as Error).message}`);
  }
  const instant = (name: 'from' | 'to'): EpochMs => {
    const raw = text(name);
    const ms = parseInstant(raw);
    if (ms === undefined) {
      throw new AppError(
        'INVALID_ARGUMENT',
        `--${name} ${JSON.stringify(raw)} is not an ISO-8601 time (2026-11-01 or 2026-11-01T12:00Z)`,
      );
    }
    return ms;
  };
  const from = instant('from');
  const to = instant('to');
  if (to <= from) {
    throw new AppError('INVALID_ARGUMENT', `--to ${toIso(to)} must be after --from ${toIso(from)}`);
  }
  return { symbol, from, to };
}

/** One line of progress: percent of the range, minutes and trades rebuilt, and the rate. */
export function rebuildProgressLine(
  args: RebuildArgs,
  progress: { done: EpochMs; minutes: number; trades: number },
  elapsedMs: number,
): string {
  const fraction = Math.min(1, (progress.done - args.from) / (args.to - args.from));
  const width = 24;
  const filled = Math.round(fraction * width);
  const rate = elapsedMs > 0 ? Math.round((progress.trades / elapsedMs) * 1_000) : 0;
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}% ` +
    `${toIso(Math.min(progress.done, args.to))} · ${progress.minutes} minutes, ` +
    `${progress.trades} trades · ${rate} trades/s`
  );
}
