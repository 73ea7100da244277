/**
 * How the chart frames a series too short to fill it, as on a fresh start with no stored history.
 * Left to itself, Lightweight Charts draws such a series at its default 6 px a bar with no right
 * offset: one candle pinned against the price axis and an empty canvas beside it. Instead the
 * few bars are shown at a normal candle width, on the right, with room for the next ones.
 */

/** Bar slots a short series is framed in at least, so one candle is never stretched wide. */
export const MIN_SLOTS = 60;
/** Bar slots at most, so a wide screen still draws a few candles at a candle's width. */
export const MAX_SLOTS = 120;
/** The bar spacing (px) aimed at between those bounds. */
export const BAR_SPACING_PX = 10;
/** Empty slots kept right of the newest bar: room for the next ones. */
export const ROOM_BARS = 5;

/** A range of bar indexes (Lightweight Charts' logical range: 0 is the oldest loaded bar). */
export interface LogicalRange {
  from: number;
  to: number;
}

/** The bar slots a time scale `widthPx` wide is framed in. */
export function slotsFor(widthPx: number): number {
  return Math.min(MAX_SLOTS, Math.max(MIN_SLOTS, Math.floor(widthPx / BAR_SPACING_PX)));
}

/**
 * The logical range to show `bars` bars in a time scale `widthPx` wide when they are too few to
 * fill it (the newest `ROOM_BARS` slots from the right edge, the rest empty on the left), or
 * undefined when they fill it and the chart's own scrolling and zoom apply.
 */
export function fewBarsRange(bars: number, widthPx: number): LogicalRange | undefined {
  const slots = slotsFor(widthPx);
  if (bars + ROOM_BARS >= slots) return undefined;
  const to = bars - 1 + ROOM_BARS;
  return { from: to - slots, to };
}
