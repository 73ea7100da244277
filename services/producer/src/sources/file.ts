import { open } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { MarketSymbol, Tick, TradeSide } from '@candlestream/core';
import {
  AppError,
  MAX_TICK_TS_MS,
  MAX_TRADE_ID_LENGTH,
  MIN_TICK_TS_MS,
  TRADE_SIDES,
  parseInstant,
  parseSymbol,
  tickSchema,
  validateWith,
} from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { SourceRunOptions, TradeSource } from './source.js';

export type TradeFileFormat = 'csv' | 'ndjson';

export interface FileSourceOptions {
  /** `.csv`, `.ndjson` or `.jsonl`, optionally gzipped (`.csv.gz`). */
  path: string;
  /** Default: from the extension. */
  format?: TradeFileFormat;
  logger: Logger;
  /** Every trade is for this symbol, whatever (if anything) the file says. */
  symbolOverride?: MarketSymbol;
}

const MAX_BAD_LINE_LOGS = 20;
/**
 * Numeric times below this are epoch seconds, above it epoch ms: 1e11 s is the year 5138 and
 * 1e11 ms is 1973, so no real trade time is ambiguous.
 */
const EPOCH_SECONDS_BELOW = 1e11;
/** Zero-padded so default ids sort in file order (ties in one ms are ordered by id). */
const LINE_NUMBER_DIGITS = 9;
const MAX_ID_FILE_NAME_CHARS = MAX_TRADE_ID_LENGTH - LINE_NUMBER_DIGITS - 8;
const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const MAX_SHOWN_CHARS = 40;
const FORMAT_BY_EXTENSION: Partial<Record<string, TradeFileFormat>> = {
  '.csv': 'csv',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
};

/** A problem confined to one line: the line is skipped, the file goes on. */
class BadLine extends Error {}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > MAX_SHOWN_CHARS ? `${text.slice(0, MAX_SHOWN_CHARS)}…` : text;
}

/**
 * One CSV line with RFC 4180 quoting (`"a,b"`, `"say ""hi"""`). A quoted field cannot span lines
 * here (the file is read line by line); such a line is reported as bad.
 */
function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let start = i;
    while (line[start] === ' ' || line[start] === '\t') start++;
    let end: number;
    if (line[start] === '"') {
      let value = '';
      let at = start + 1;
      for (;;) {
        const quote = line.indexOf('"', at);
        if (quote < 0) throw new BadLine('unterminated quoted field');
        value += line.slice(at, quote);
        if (line[quote + 1] !== '"') {
          at = quote + 1;
          break;
        }
        value += '"';
        at = quote + 2;
      }
      end = line.indexOf(',', at);
      if (line.slice(at, end < 0 ? undefined : end).trim() !== '') {
        throw new BadLine('text after a closing quote');
      }
      fields.push(value);
    } else {
      end = line.indexOf(',', i);
      fields.push(line.slice(i, end < 0 ? undefined : end).trim());
    }
    if (end < 0) return fields;
    i = end + 1;
  }
}

function positive(name: string, value: unknown): number {
  if (value === undefined || value === '') throw new BadLine(`${name} is missing`);
  const wellFormed =
    typeof value === 'number' || (typeof value === 'string' && DECIMAL_RE.test(value.trim()));
  const n = wellFormed ? Number(value) : NaN;
  if (!(n > 0 && Number.isFinite(n))) {
    throw new BadLine(`${name} ${show(value)} must be a positive number`);
  }
  return n;
}

/** Epoch ms, epoch seconds (by magnitude, see EPOCH_SECONDS_BELOW) or ISO-8601 (UTC if no zone). */
function timestamp(value: unknown): number {
  if (value === undefined || value === '') throw new BadLine('ts is missing');
  const text = typeof value === 'string' ? value.trim() : undefined;
  let ms: number | undefined;
  if (typeof value === 'number' || (text !== undefined && DECIMAL_RE.test(text))) {
    const n = Number(value);
    ms = Math.round(Math.abs(n) < EPOCH_SECONDS_BELOW ? n * 1000 : n);
  } else if (text !== undefined) {
    // Spreadsheets write `2024-01-01 12:00:00`; ISO-8601 wants the T.
    ms = parseInstant(text.replace(/^(\d{4}-\d{2}-\d{2}) (?=\d)/, '$1T'));
  }
  if (ms === undefined || !Number.isFinite(ms)) {
    throw new BadLine(`ts ${show(value)} is not epoch ms, epoch seconds or ISO-8601`);
  }
  if (ms < MIN_TICK_TS_MS || ms >= MAX_TICK_TS_MS) {
    const read = Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : 'out of range';
    throw new BadLine(`ts ${show(value)} reads as ${read}, not between 2009-01-03 and 2100`);
  }
  return ms;
}

function tradeSide(value: unknown): TradeSide {
  if (value === undefined || value === null || value === '') return 'unknown';
  const side = typeof value === 'string' ? value.trim().toLowerCase() : value;
  if ((TRADE_SIDES as readonly unknown[]).includes(side)) return side as TradeSide;
  throw new BadLine(`side ${show(value)} must be buy, sell or unknown`);
}

function tradeId(value: unknown, fallback: string): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new BadLine(`id ${show(value)} must be a string or a number`);
  }
  return String(value).trim() || fallback;
}

function marketSymbol(value: unknown, override: MarketSymbol | undefined): MarketSymbol {
  if (override) return override;
  if (value === undefined || value === '') throw new BadLine('symbol is missing');
  if (typeof value !== 'string') throw new BadLine(`symbol ${show(value)} must be a string`);
  try {
    return parseSymbol(value);
  } catch (err) {
    throw new BadLine((err as Error).message);
  }
}

/** One line's fields by name, as read (strings from CSV, JSON values from NDJSON). */
type RawTrade = Partial<Record<string, unknown>>;

function toTick(record: RawTrade, defaultId: string, override: MarketSymbol | undefined): Tick {
  if (record['v'] !== undefined && record['v'] !== 1) {
    throw new BadLine(`v ${show(record['v'])} is not 1`);
  }
  const tick: Tick = {
    v: 1,
    symbol: marketSymbol(record['symbol'], override),
    ts: timestamp(record['ts']),
    price: positive('price', record['price']),
    size: positive('size', record['size']),
    side: tradeSide(record['side']),
    id: tradeId(record['id'], defaultId),
    source: 'file',
  };
  // The wire schema has the last word, so nothing this source yields is refused downstream.
  const checked = validateWith(tickSchema, tick);
  if (!checked.ok) throw new BadLine(checked.reason);
  return tick;
}

/** Column index by name from the header row; a file without the required columns is refused. */
function readHeader(line: string, path: string, symbolFromFile: boolean): Map<string, number> {
  const refuse = (problem: string): AppError =>
    new AppError('INVALID_ARGUMENT', `trades file ${path}: the CSV header ${problem}`, {
      retriable: false,
    });
  let names: string[];
  try {
    names = splitCsvLine(line.replace(/^\uFEFF/, '')).map((n) => n.toLowerCase());
  } catch (err) {
    throw refuse((err as Error).message);
  }
  const columns = new Map(names.map((name, index) => [name, index]));
  const required = symbolFromFile ? ['symbol', 'ts', 'price', 'size'] : ['ts', 'price', 'size'];
  const missing = required.filter((name) => !columns.has(name));
  if (missing.length > 0) {
    throw refuse(`has no ${missing.join(', ')} column (found: ${show(names.join(','))})`);
  }
  if (columns.size !== names.length) throw refuse('repeats a column name');
  return columns;
}

/** One data line into its fields by name, or a BadLine. */
function parseRecord(line: string, columns: Map<string, number> | undefined): RawTrade {
  if (columns) {
    const fields = splitCsvLine(line);
    if (fields.length !== columns.size) {
      throw new BadLine(`has ${fields.length} fields, the header has ${columns.size}`);
    }
    return Object.fromEntries([...columns].map(([name, i]) => [name, fields[i]]));
  }
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new BadLine(`invalid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadLine('is not a JSON object');
  }
  return value;
}

function readError(path: string, err: unknown): AppError {
  if (AppError.is(err)) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new AppError('INVALID_ARGUMENT', `cannot read trades file ${path}: ${reason}`, {
    cause: err,
    retriable: false,
  });
}

async function* readTrades(
  options: FileSourceOptions & { format: TradeFileFormat },
  { signal, onStatus }: SourceRunOptions,
): AsyncGenerator<Tick> {
  const { path, format, logger, symbolOverride } = options;
  if (signal.aborted) return;
  const handle = await open(path).catch((err: unknown) => {
    throw readError(path, err);
  });
  const fileStream = handle.createReadStream(); // closes the handle when it ends or is destroyed
  const input: Readable = path.toLowerCase().endsWith('.gz')
    ? pipeline(fileStream, createGunzip(), () => {}) // errors reach readline through the gunzip
    : fileStream;
  const lines = createInterface({ input, crlfDelay: Infinity });
  const stop = (): void => {
    lines.close();
    input.destroy();
  };
  signal.addEventListener('abort', stop, { once: true });
  onStatus?.({ state: 'connected' });
  const idPrefix = `${basename(path).slice(0, MAX_ID_FILE_NAME_CHARS)}:`;
  const startedMs = performance.now();
  const counts = { read: 0, yielded: 0, skipped: 0 };
  let ended = 'stopped';
  let lineNumber = 0;
  let columns: Map<string, number> | undefined;
  try {
    for await (const line of lines) {
      lineNumber++;
      if (signal.aborted) break;
      if (line.trim() === '') continue;
      if (format === 'csv' && columns === undefined) {
        columns = readHeader(line, path, symbolOverride === undefined);
        continue;
      }
      counts.read++;
      let tick: Tick;
      try {
        const defaultId = `${idPrefix}${String(lineNumber).padStart(LINE_NUMBER_DIGITS, '0')}`;
        tick = toTick(parseRecord(line, columns), defaultId, symbolOverride);
      } catch (err) {
        if (!(err instanceof BadLine)) throw err;
        counts.skipped++;
        if (counts.skipped <= MAX_BAD_LINE_LOGS) {
          logger.warn('bad trade line skipped', {
            path,
            reason: `line ${lineNumber}: ${err.message}`,
          });
        } else if (counts.skipped === MAX_BAD_LINE_LOGS + 1) {
          logger.warn('further bad lines suppressed', { path });
        }
        continue;
      }
      counts.yielded++;
      yield tick;
    }
    ended = signal.aborted ? 'aborted' : 'end-of-file';
  } catch (err) {
    ended = 'failed';
    throw readError(path, err);
  } finally {
    signal.removeEventListener('abort', stop);
    stop();
    const durationMs = Math.round(performance.now() - startedMs);
    logger.info('trades file read', { path, format, ended, ...counts, durationMs });
  }
}

/**
 * Trades from a CSV or NDJSON file, streamed line by line and yielded in file order: the file
 * must be time-ordered per symbol (nothing is sorted). Bad lines are skipped, logged and counted.
 */
export function createFileSource(options: FileSourceOptions): TradeSource {
  const format =
    options.format ?? FORMAT_BY_EXTENSION[extname(options.path.toLowerCase().replace(/\.gz$/, ''))];
  if (format === undefined) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `cannot tell the format of trades file ${options.path}: name it .csv, .ndjson or .jsonl ` +
        '(optionally .gz), or pass a format',
      { retriable: false },
    );
  }
  return {
    kind: 'file',
    trades: (run) => readTrades({ ...options, format }, run),
  };
}
