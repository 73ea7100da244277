/**
 * What a replay is made of (docs/REPLAY.md): a history source that yields trades in (ts, id,
 * symbol) order a page at a time, a sink that publishes them, and the engine between them that
 * paces them against an absolute clock.
 */
import type { EpochMs, MarketSymbol, ReplaySpeed, Tick } from '@candlestream/core';

/** What to replay: symbols merged by time over [from, to). */
export interface ReplayRange {
  symbols: readonly MarketSymbol[];
  from: EpochMs;
  /** Exclusive. */
  to: EpochMs;
}

/**
 * Where a replay's trades come from. `pages` yields the trades of the range from `from` on (a
 * seek starts it again there), ascending by (ts, id, symbol), in pages of bounded size, so memory
 * stays flat however long the range. It ends after the last trade before `range.to`.
 */
export interface HistorySource {
  /** For logs and the status: `stored`, `file:<path>`. */
  readonly kind: string;
  pages(range: ReplayRange, from: EpochMs, signal: AbortSignal): AsyncIterable<readonly Tick[]>;
}

/** Where replayed trades go: the session topic, or any topic the user named. */
export interface ReplaySink {
  /** Publishes in order; resolves when the broker acknowledged them. */
  send(trades: readonly Tick[]): Promise<void>;
}

/** `max`: as fast as the sink takes them, no pacing. */
export type { ReplaySpeed } from '@candlestream/core';
export { MAX_REPLAY_SPEED as MAX_SPEED, MIN_REPLAY_SPEED as MIN_SPEED } from '@candlestream/core';

export type ReplayState = 'playing' | 'paused' | 'ended';

/** Lag behind schedule: how late a message was published after its due time, ms. */
export interface LagSummary {
  p50: number;
  p99: number;
  max: number;
}

/** What the engine reports (status line, /status, the session's status topic). */
export interface ReplayStatus {
  state: ReplayState;
  /** The simulated time: every trade before it has been published. */
  simTime: EpochMs;
  /** Of the range, 0..100. */
  percent: number;
  speed: ReplaySpeed;
  /** Trades published so far. */
  messages: number;
  /** Trades per second over the last second of wall time. */
  rate: number;
  lag: LagSummary;
  /** Wall time since the replay started, ms (pauses included). */
  wallMs: number;
}
