/** What the page tells its user, in words rather than the datafeed's codes. */
import type { UnavailableRange } from '@candlestream/core';

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

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY_MS = 86_400_000;

/**
 * The note over a chart with too few candles to fill it (a fresh start: the store holds only what
 * came in live). `firstTime` is the oldest candle's open (epoch ms), `resolutionMs` the interval,
 * `now` the time it is said at. In UTC, as the chart's time axis is.
 */
export function fewCandles(
  count: number,
  firstTime: number | undefined,
  resolutionMs: number,
  now: number,
): string {
  if (count === 0 || firstTime === undefined)
    return "No candles yet: waiting for the first live trades. Older history isn't stored yet.";
  const first = new Date(firstTime);
  const today = new Date(now);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const year =
    first.getUTCFullYear() === today.getUTCFullYear() ? '' : ` ${String(first.getUTCFullYear())}`;
  const day = `${String(first.getUTCDate())} ${MONTHS[first.getUTCMonth()]!}${year}`;
  const time = `${pad(first.getUTCHours())}:${pad(first.getUTCMinutes())} UTC`;
  // A daily or weekly candle opens at midnight UTC: its day says when, not a time of day.
  const since =
    resolutionMs >= DAY_MS
      ? day
      : Math.floor(firstTime / DAY_MS) === Math.floor(now / DAY_MS)
        ? time
        : `${day} ${time}`;
  const candles = count === 1 ? '1 candle' : `${String(count)} candles`;
  return `${candles} so far, since ${since}. Older history isn't stored yet; new candles are added as live trades arrive.`;
}

/** `12 May 14:02 UTC` (the year when it is not `now`'s): a moment as the time axis shows it. */
function moment(ms: number, now: number): string {
  const at = new Date(ms);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const year =
    at.getUTCFullYear() === new Date(now).getUTCFullYear() ? '' : ` ${String(at.getUTCFullYear())}`;
  return `${String(at.getUTCDate())} ${MONTHS[at.getUTCMonth()]!}${year} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())} UTC`;
}

/**
 * The line above the chart while a backfill the page asked for runs (docs/BACKFILLS.md):
 * `percent` from the job's progress when it has one; `queuedForMs` how long it has waited
 * without starting, since a platform without the services that fetch history never starts it.
 */
export function historyLoading(percent: number | undefined, queuedForMs = 0): string {
  if (queuedForMs >= STILL_QUEUED_MS)
    return 'Loading history… still queued: nothing has started fetching it yet.';
  return percent === undefined ? 'Loading history…' : `Loading history… ${String(percent)}%`;
}
/** After this long queued, the loading line says nothing has picked the job up. */
export const STILL_QUEUED_MS = 30_000;

/** A backfill the page waited for failed; `error` is the job's own words, when it has them. */
export function historyFailed(error: string | undefined): string {
  const why = error?.trim().replace(/\.$/, '');
  return why
    ? `Could not load older history: ${why}. The chart shows what is stored.`
    : 'Could not load older history. The chart shows what is stored.';
}

/**
 * The source could not provide part of what was asked for (a backfill's `unavailable`);
 * `stored` when it kept only coarser candles there, which the longer intervals show.
 */
export function historyUnavailable(
  from: number,
  to: number,
  now: number,
  stored?: UnavailableRange['stored'],
): string {
  const span = `${moment(from, now)} – ${moment(to, now)}`;
  if (stored === '1h') return `The source keeps only hourly bars for ${span}: choose 1h or longer.`;
  if (stored === '1d') return `The source keeps only daily bars for ${span}: choose 1D or longer.`;
  return `The source has no history for ${span}.`;
}
