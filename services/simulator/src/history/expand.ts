/**
 * Trades standing for a stored 1-minute candle whose raw trades are gone (dropped by retention,
 * or the minute came from an imported or backfilled candle): replaying them and aggregating
 * with the core aggregator gives that candle exactly, so every longer interval matches the
 * database's ohlcv_* too.
 */
import type { Bar, MarketSymbol, Tick } from '@candlestream/core';

/**
 * Where in its minute each expanded trade falls: distinct times, so the (ts, id) order that picks
 * open and close never depends on the ids.
 */
export const EXPANDED_TRADE_OFFSETS_MS = [0, 15_000, 30_000, 45_000] as const;
/**
 * Divisors of the volume, in time order: v/8, v/8, v/4, v/2. Dividing by a power of two only
 * moves the exponent, so each share is exact, and in this order every running sum (v/4, v/2, v)
 * is exact too, so the sizes add up to exactly v in plain floating point, summed in replay order,
 * not only in the aggregator's exact sum. (In the order v/2, v/4, v/8, v/8 the running sum
 * 3v/4 can need two more significand bits and round: one random volume in five.)
 */
const VOLUME_DIVISORS = [8, 8, 4, 2] as const;
/**
 * Below this a volume's eighth would be subnormal and could lose bits; 2^-1019 (about 1e-307) is
 * far below any real trade size, so such a candle is treated as having no volume (below).
 */
const MIN_SPLIT_VOLUME = 2 ** -1019;
/**
 * The size of each expanded trade of a candle without volume: a trade must have a positive
 * size (tickSchema; ticks.size CHECK > 0), and the smallest positive double keeps every price of
 * the candle in the replay (open, high, low, close at every interval) while the minute's volume
 * reads 4 × 5e-324 = 2e-323 instead of 0. In a longer bucket with real volume that is far below
 * half the last bit of the sum, so it can change the rounded volume only where the exact sum lies
 * on a rounding midpoint.
 */
export const ZERO_VOLUME_TRADE_SIZE = Number.MIN_VALUE;
export const EXPANDED_TRADE_ID_PREFIX = 'replay-';

/** Whether the candle's volume cannot be split exactly and stands in with ZERO_VOLUME_TRADE_SIZE. */
export function hasNoSplittableVolume(bar: Bar): boolean {
  return !(bar.volume >= MIN_SPLIT_VOLUME);
}

/**
 * The four trades of a 1-minute candle at `bar.time`: the open first, then the low and the high
 * (low first when the candle closed at or above its open, as a rising minute usually dips
 * first; high first otherwise), then the close, at +0, +15, +30 and +45 s, with sizes v/8, v/8,
 * v/4, v/2. Ids `replay-<minute ms>-<k>` are deterministic, so two replays emit the same trades;
 * side is unknown (a candle does not say) and source 'replay'.
 */
export function expandMinute(symbol: MarketSymbol, bar: Bar): Tick[] {
  const rising = bar.close >= bar.open;
  const prices = [bar.open, rising ? bar.low : bar.high, rising ? bar.high : bar.low, bar.close];
  const noVolume = hasNoSplittableVolume(bar);
  return EXPANDED_TRADE_OFFSETS_MS.map((offset, k) => ({
    v: 1,
    symbol,
    ts: bar.time + offset,
    price: prices[k]!,
    size: noVolume ? ZERO_VOLUME_TRADE_SIZE : bar.volume / VOLUME_DIVISORS[k]!,
    side: 'unknown',
    id: `${EXPANDED_TRADE_ID_PREFIX}${bar.time}-${k}`,
    source: 'replay',
  }));
}
