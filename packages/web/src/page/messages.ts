/** What the page tells its user, in words rather than the datafeed's codes. */

/** The datafeed's reason for a symbol the datastore does not have (datafeed resolveSymbol). */
export const UNKNOWN_SYMBOL = 'unknown_symbol';

/** Why `symbol` cannot be shown, for a person; `known` are the symbols the platform has. */
export function cannotShow(symbol: string, reason: string, known: readonly string[]): string {
  if (reason === UNKNOWN_SYMBOL) {
    const hint = known.length > 0 ? `; try ${known.slice(0, 5).join(', ')}` : '';
    return `${symbol} is not a symbol this platform has${hint}.`;
  }
  return `Could not load ${symbol}: ${reason}. The chart keeps what it showed; try again in a moment.`;
}

/** The message shown when the API wants a token (AUTH_MODE=jwt) and has none or refused it. */
export function tokenNeeded(hadToken: boolean): string {
  return hadToken
    ? 'The API refused this token (expired or not valid). Paste another to see the chart.'
    : 'This platform needs an access token (a JWT) to show the chart. Paste it below.';
}

/** A price the way the legend shows it: no float noise, at most 8 significant decimals. */
export function price(value: number): string {
  if (!Number.isFinite(value)) return '';
  const abs = Math.abs(value);
  const decimals = abs >= 1_000 ? 2 : abs >= 1 ? 4 : 8;
  return value
    .toFixed(decimals)
    .replace(/(\.\d*?)0+$/, '$1')
    .replace(/\.$/, '');
}

/** A volume in a few characters: 1234 → 1.23K. */
export function volume(value: number): string {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(2)}B`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (abs >= 1e3) return `${(value / 1e3).toFixed(2)}K`;
  return price(value);
}
