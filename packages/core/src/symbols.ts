import { invalidArgument } from './errors.js';

/** A canonical market symbol, `BASE-QUOTE` in upper case (`BTC-USD`). Only `parseSymbol` makes one. */
export type MarketSymbol = string & { readonly __brand: 'MarketSymbol' };

/** A currency code: letters and digits (tickers such as `1INCH`), 1 to 12 characters. */
const ASSET_RE = /^[A-Z0-9]{1,12}$/;
const SEPARATED_RE = /^([A-Za-z0-9]+)[-/_]([A-Za-z0-9]+)$/;
const MAX_INPUT_LENGTH = 32;

/**
 * Quote currencies recognised in unseparated input such as `BTCUSD`. The longest match wins
 * (`BTCTUSD` is BTC-TUSD, not BTCT-USD), and the base keeps at least two characters.
 */
export const KNOWN_QUOTES: readonly string[] = [
  'USDT',
  'USDC',
  'BUSD',
  'TUSD',
  'FDUSD',
  'DAI',
  'USD',
  'EUR',
  'GBP',
  'JPY',
  'KRW',
  'AUD',
  'CAD',
  'CHF',
  'TRY',
  'BRL',
  'BTC',
  'ETH',
];
const QUOTES_LONGEST_FIRST = [...KNOWN_QUOTES].sort((a, b) => b.length - a.length);

function splitUnseparated(upper: string): [string, string] | undefined {
  for (const quote of QUOTES_LONGEST_FIRST) {
    if (upper.length - quote.length >= 2 && upper.endsWith(quote)) {
      return [upper.slice(0, -quote.length), quote];
    }
  }
  return undefined;
}

/**
 * Parses `BTC-USD`, `BTCUSD`, `BTC/USD`, `btc_usd` and the like into the canonical `BTC-USD`.
 * Throws an INVALID_ARGUMENT AppError naming what is wrong.
 */
export function parseSymbol(input: string): MarketSymbol {
  if (typeof input !== 'string') throw invalidArgument('symbol must be a string');
  const raw = input.trim();
  const shown = JSON.stringify(
    input.length > MAX_INPUT_LENGTH ? `${input.slice(0, MAX_INPUT_LENGTH)}…` : input,
  );
  if (raw === '') throw invalidArgument('symbol is empty');
  if (raw.length > MAX_INPUT_LENGTH) {
    throw invalidArgument(`symbol ${shown} is longer than ${MAX_INPUT_LENGTH} characters`);
  }
  let parts: [string, string] | undefined;
  const separated = SEPARATED_RE.exec(raw);
  if (separated) {
    parts = [separated[1]!.toUpperCase(), separated[2]!.toUpperCase()];
  } else if (/^[A-Za-z0-9]+$/.test(raw)) {
    parts = splitUnseparated(raw.toUpperCase());
    if (!parts) {
      throw invalidArgument(
        `symbol ${shown} has no separator and no known quote currency; write it as BASE-QUOTE`,
      );
    }
  } else {
    throw invalidArgument(
      `symbol ${shown} is not BASE-QUOTE (letters and digits, separated by one of - / _)`,
    );
  }
  const [base, quote] = parts;
  if (!ASSET_RE.test(base) || !ASSET_RE.test(quote)) {
    throw invalidArgument(`symbol ${shown} has a currency code longer than 12 characters`);
  }
  if (base === quote) throw invalidArgument(`symbol ${shown} has the same base and quote`);
  return `${base}-${quote}` as MarketSymbol;
}

/** True when `value` is already canonical (what the wire format requires). */
export function isCanonicalSymbol(value: string): value is MarketSymbol {
  try {
    return parseSymbol(value) === value;
  } catch {
    return false;
  }
}

export function splitSymbol(symbol: MarketSymbol): { base: string; quote: string } {
  const dash = symbol.indexOf('-');
  return { base: symbol.slice(0, dash), quote: symbol.slice(dash + 1) };
}

/** Parses a comma-separated list (`SYMBOLS=BTC-USD,ethusd`), canonical and without repeats. */
export function parseSymbolList(input: string): MarketSymbol[] {
  const items = input
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw invalidArgument('symbol list is empty');
  return [...new Set(items.map(parseSymbol))];
}
