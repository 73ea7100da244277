import { AppError, sleep, systemClock } from '@candlestream/core';
import { fromCallback } from 'xstate';
import type { ProducerEvent } from '../producer.machine.js';
import type { SourceStatus } from '../sources/source.js';
import type { Deps } from './deps.js';

/** Shorter waits are batched into later ones: timers are not that precise. */
const PACE_GRANULARITY_MS = 10;

function describe(status: SourceStatus): string | undefined {
  if (status.state === 'disconnected') return `upstream disconnected: ${status.reason}`;
  return undefined;
}

/**
 * Pulls trades from the source into the bounded buffer. When the buffer is full, `push` waits,
 * so the source is read no faster than the broker takes trades (backpressure). Ends with
 * SOURCE_DONE (finite source) or SOURCE_FAILED; leaving the state aborts the source. While it
 * runs it also sends the buffer's broker health up (DEGRADED/RECOVERED `broker`).
 */
export function streamActor(deps: Deps) {
  const clock = deps.clock ?? systemClock;
  return fromCallback<ProducerEvent>(({ sendBack }) => {
    const abort = new AbortController();
    const log = deps.logger.child({ component: 'stream' });
    const unsubscribe = deps.brokerHealth.subscribe((health) =>
      sendBack(
        health.ok
          ? { type: 'RECOVERED', check: 'broker' }
          : { type: 'DEGRADED', check: 'broker', problem: health.problem },
      ),
    );
    const onStatus = (status: SourceStatus): void => {
      deps.lastSourceStatus = status;
      const problem = describe(status);
      log.info('source status', { ...status });
      sendBack(
        problem
          ? { type: 'DEGRADED', check: 'source', problem }
          : { type: 'RECOVERED', check: 'source' },
      );
    };
    const run = async (): Promise<void> => {
      log.info('source starting', {
        kind: deps.source.kind,
        resumeFrom: Object.fromEntries(deps.newest),
      });
      const trades = deps.source.trades({
        signal: abort.signal,
        ...(deps.newest.size > 0 ? { resumeFrom: new Map(deps.newest) } : {}),
        onStatus,
      });
      const started = clock.now();
      let count = 0;
      for await (const tick of trades) {
        if (abort.signal.aborted) return;
        deps.received.inc();
        if (deps.maxRate !== undefined) {
          // Pace against the start, not the previous trade, so the rate does not drift.
          const waitMs = started + (++count * 1_000) / deps.maxRate - clock.now();
          if (waitMs >= PACE_GRANULARITY_MS) await sleep(waitMs, abort.signal, clock);
        }
        await deps.buffer.push(tick);
        const seen = deps.newest.get(tick.symbol);
        if (seen === undefined || tick.ts >= seen) deps.newest.set(tick.symbol, tick.ts);
      }
      if (!abort.signal.aborted) sendBack({ type: 'SOURCE_DONE' });
    };
    run().catch((err: unknown) => {
      if (abort.signal.aborted) return;
      const error = AppError.from(err, 'UNAVAILABLE');
      log.error('source failed', { err: error, retriable: error.retriable });
      sendBack({ type: 'SOURCE_FAILED', error: error.message, retriable: error.retriable });
    });
    return () => {
      unsubscribe();
      abort.abort(new AppError('CANCELLED', 'source stopped'));
    };
  });
}
