import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Clock, EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import { AppError, MAX_TICK_TS_MS, MIN_TICK_TS_MS, sleep, systemClock } from '@candlestream/core';
import type { SyntheticModel, SyntheticTradeStream } from './synthetic-model.js';
import { createSyntheticModel } from './synthetic-model.js';
import type { SourceRunOptions, TradeSource } from './source.js';

export {
  createSyntheticModel,
  syntheticCandles,
  type SyntheticModel,
  type SyntheticModelOptions,
} from './synthetic-model.js';

/** The seed when SYNTHETIC_SEED is unset: fixed, so every run (and a backfill) shares one path. */
export const DEFAULT_SYNTHETIC_SEED = 1;

export interface SyntheticSourceOptions {
  symbols: readonly MarketSymbol[];
  /** Same seed, same trades: the trades of any time are a pure function of it (synthetic-model). */
  seed: number;
  /** Total across all symbols; each symbol gets an equal share on average. */
  tradesPerSecond: number;
  /**
   * History mode: the trades from here on, emitted as fast as the reader pulls; without a
   * `limit`, until they reach the clock's now, then each when the clock reaches its time.
   * Absent: live mode from the clock's now.
   */
  startTs?: EpochMs;
  /** End after this many trades in total. Default: never. */
  limit?: number;
  clock?: Clock;
  /** Centre prices by symbol (any spelling `parseSymbol` accepts): where each path reverts to. */
  initialPrices?: Partial<Record<string, number>>;
}

/** Live pacing: wake at most this often and at least this rarely, emitting every trade due. */
const MIN_BURST_MS = 20;
const MAX_BURST_MS = 100;
/**
 * A reader (or a suspended laptop) behind its trades emits the missed ones, at most this much of
 * them: older ones are skipped instead of flooding (they are the path's; a backfill has them).
 */
export const MAX_CATCH_UP_MS = 60_000;
/** History mode lets timers (an abort) run this often, even when the reader never awaits I/O. */
const HISTORY_TRADES_PER_TURN = 10_000;

function invalid(message: string): AppError {
  return new AppError('INVALID_ARGUMENT', `synthetic source: ${message}`, { retriable: false });
}

function validate(options: SyntheticSourceOptions): void {
  const { startTs, limit } = options;
  if (
    startTs !== undefined &&
    !(Number.isInteger(startTs) && startTs >= MIN_TICK_TS_MS && startTs < MAX_TICK_TS_MS)
  ) {
    throw invalid(`startTs must be epoch ms between 2009 and 2100, got ${startTs}`);
  }
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw invalid(`limit must be a non-negative integer, got ${limit}`);
  }
}

/** Counts what was emitted against the limit; shared by the history and live parts of one run. */
interface Budget {
  left: number;
}

/**
 * Emits each trade when the clock reaches its time. A restarted run (`resumeFrom`) first emits
 * each symbol's trades from its newest published one on (that trade again: same id, same row),
 * within the catch-up limit.
 */
async function* live(
  stream: SyntheticTradeStream,
  from: EpochMs,
  clock: Clock,
  budget: Budget,
  signal: AbortSignal,
  resumeFrom?: ReadonlyMap<MarketSymbol, EpochMs>,
): AsyncGenerator<Tick> {
  let cursor = from;
  while (budget.left > 0 && !signal.aborted) {
    const now = clock.now();
    if (now - cursor > MAX_CATCH_UP_MS) stream.skipTo(now - MAX_CATCH_UP_MS);
    let next = stream.peek();
    while (next !== undefined && next.ts <= now && budget.left > 0) {
      stream.next();
      const newest = resumeFrom?.get(next.symbol);
      if (newest === undefined || next.ts >= newest) {
        budget.left--;
        yield next;
        if (signal.aborted) return;
      }
      next = stream.peek();
    }
    cursor = Math.max(cursor, now);
    if (next === undefined) return;
    // Due times come from the trades, not from counting sleeps, so pacing never drifts.
    const waitMs = next.ts - clock.now();
    if (waitMs <= 0) continue;
    // sleep rejects only on abort, which the loop condition then sees.
    await sleep(Math.min(MAX_BURST_MS, Math.max(MIN_BURST_MS, waitMs)), signal, clock).catch(
      () => {},
    );
  }
}

async function* run(
  model: SyntheticModel,
  options: SyntheticSourceOptions,
  clock: Clock,
  { signal, onStatus, resumeFrom }: SourceRunOptions,
): AsyncGenerator<Tick> {
  onStatus?.({ state: 'connected' });
  const budget: Budget = { left: options.limit ?? Infinity };
  const startTs = options.startTs;
  if (startTs === undefined) {
    // A restart within the process goes on from the newest trade it handed on.
    const resumed =
      resumeFrom && resumeFrom.size > 0 ? Math.min(...resumeFrom.values()) : undefined;
    const from =
      resumed === undefined ? clock.now() : Math.max(resumed, clock.now() - MAX_CATCH_UP_MS);
    yield* live(model.stream(from), from, clock, budget, signal, resumeFrom);
    return;
  }
  const stream = model.stream(startTs);
  // With a limit: a fixed batch (tests, benchmarks), as fast as the reader pulls, even past now.
  // Without: history up to now, then the same trades go on live, each at its time.
  const upTo = options.limit === undefined ? clock.now() : Infinity;
  for (let n = 1; budget.left > 0 && !signal.aborted; n++) {
    if (n % HISTORY_TRADES_PER_TURN === 0) {
      await yieldToEventLoop();
      if (signal.aborted) return;
    }
    const next = stream.peek();
    if (next === undefined) return;
    if (next.ts > upTo) break;
    stream.next();
    budget.left--;
    yield next;
  }
  if (options.limit === undefined) yield* live(stream, upTo, clock, budget, signal);
}

/** Plausible trades from a deterministic model: the default source for demos, tests and benchmarks. */
export function createSyntheticSource(options: SyntheticSourceOptions): TradeSource {
  validate(options);
  const model = createSyntheticModel(options);
  const clock = options.clock ?? systemClock;
  return {
    kind: 'synthetic',
    trades: (runOptions: SourceRunOptions): AsyncIterable<Tick> =>
      run(model, options, clock, runOptions),
  };
}
