import type { MarketSymbol } from '@candlestream/core';
import { decodeTick, errorMessage } from '@candlestream/core';
import type { ConsumedMessage } from '@candlestream/kafka';
import { readTopicTail } from '@candlestream/kafka';
import type { Deps } from './deps.js';

/**
 * Records read back per partition: symbols are keyed to partitions, so with a few symbols per
 * partition 1,000 trades (~150 KB) hold each one's newest trade unless another symbol floods it.
 */
export const TAIL_RECORDS_PER_PARTITION = 1_000;
/** The read back must not hold up publishing for long; past it the walks start from defaults. */
export const TAIL_READ_TIMEOUT_MS = 10_000;

/**
 * Each wanted symbol's newest price among the records, by trade time (a later record wins a tie).
 * Any source counts: whatever was published last is what a chart shows, so it is where a walk
 * must go on. Records that are not ticks (garbage, another version) are skipped.
 */
export function newestPublishedPrices(
  records: readonly Pick<ConsumedMessage, 'value'>[],
  symbols: readonly MarketSymbol[],
): Map<MarketSymbol, number> {
  const wanted = new Set(symbols);
  const newest = new Map<MarketSymbol, { ts: number; price: number }>();
  for (const record of records) {
    if (record.value === null) continue;
    const decoded = decodeTick(record.value);
    if (!decoded.ok || !wanted.has(decoded.value.symbol)) continue;
    const { symbol, ts, price } = decoded.value;
    const seen = newest.get(symbol);
    if (seen === undefined || ts >= seen.ts) newest.set(symbol, { ts, price });
  }
  return new Map([...newest].map(([symbol, { price }]) => [symbol, price]));
}

/**
 * Fills `deps.lastPrices` from the topic's newest trades, so a restarted live synthetic producer
 * continues its walks instead of jumping back to the seed prices. Never fails the connect: a
 * topic that cannot be read (or holds nothing) leaves the defaults, with one line saying so.
 */
export async function resumePublishedPrices(deps: Deps): Promise<void> {
  const log = deps.logger.child({ component: 'source' });
  let prices: Map<MarketSymbol, number>;
  try {
    const records = await readTopicTail(deps.kafka, deps.topic.name, {
      perPartition: TAIL_RECORDS_PER_PARTITION,
      timeoutMs: TAIL_READ_TIMEOUT_MS,
      ...(deps.clock ? { clock: deps.clock } : {}),
    });
    prices = newestPublishedPrices(records, deps.symbols);
  } catch (err) {
    log.warn('could not read the published prices; synthetic prices start from their defaults', {
      topic: deps.topic.name,
      err: errorMessage(err),
    });
    return;
  }
  if (prices.size === 0) {
    log.info('no published prices to resume; synthetic prices start from their defaults', {
      topic: deps.topic.name,
    });
    return;
  }
  for (const [symbol, price] of prices) deps.lastPrices.set(symbol, price);
  log.info('synthetic prices resume from the newest published trades', {
    topic: deps.topic.name,
    prices: Object.fromEntries(prices),
    fromDefaults: deps.symbols.filter((s) => !prices.has(s)),
  });
}
