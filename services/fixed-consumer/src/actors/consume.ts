import { BatchConsumer } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { FixedConsumerEvent } from '../fixed-consumer.machine.js';
import type { Deps } from './deps.js';

/**
 * Runs the group consumer and the clock that closes quiet bars. Dependency trouble inside a
 * batch is retried there and reported as DEGRADED/RECOVERED; a consumer that crashes is reported
 * as CRASHED and the machine starts over. Cleanup (on leaving the state) stops both.
 */
export function consumeActor(deps: Deps) {
  return fromCallback<FixedConsumerEvent>(({ sendBack }) => {
    const abort = new AbortController();
    const crashed = (err: unknown): void => {
      if (abort.signal.aborted) return;
      sendBack({ type: 'CRASHED', error: err instanceof Error ? err.message : String(err) });
    };
    const consumer = new BatchConsumer(deps.kafka, {
      groupId: deps.groupId,
      topics: [deps.topics.ticks.name],
      fromBeginning: true,
      onCrash: crashed,
    });
    deps.consumer = consumer;
    consumer.start((batch, context) => deps.pipeline.handleBatch(batch, context)).catch(crashed);
    const timer = setInterval(() => {
      deps.pipeline.tick(abort.signal).catch((err: unknown) => {
        if (!abort.signal.aborted) deps.logger.warn('clock close failed', { err });
      });
    }, deps.tickIntervalMs);
    return () => {
      abort.abort();
      clearInterval(timer);
      // Not awaited here (cleanup is synchronous); connect and shutdown await deps.consumer.stop().
      consumer.stop().catch((err: unknown) => deps.logger.warn('consumer stop failed', { err }));
    };
  });
}
