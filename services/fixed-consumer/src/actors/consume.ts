import { BatchConsumer, watchBroker } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { FixedConsumerEvent } from '../fixed-consumer.machine.js';
import type { Deps } from './deps.js';

/** The check name of the broker probe (the pipeline's own publish failures are `kafka`). */
export const BROKER_CHECK = 'broker';
/**
 * tick-data partitions handled at once: one written to the database while the next is decoded
 * and published (Pipeline.handleBatch), so neither the database nor the live step waits on the
 * other. A partition's own batches stay one after the other.
 */
export const PARTITIONS_IN_FLIGHT = 3;

/**
 * Runs the group consumer, the clock that closes quiet bars and a broker probe. Dependency
 * trouble inside a batch is retried there and reported as DEGRADED/RECOVERED, as is a broker
 * that stops answering the probe (seen within ~1.5 s; kafkajs itself only crashes the consumer
 * after its retries, 5-6 s); a consumer that crashes is reported as CRASHED and the machine
 * starts over. Cleanup (on leaving the state) stops all three.
 */
export function consumeActor(deps: Deps) {
  return fromCallback<FixedConsumerEvent>(({ sendBack }) => {
    const abort = new AbortController();
    const crashed = (err: unknown): void => {
      if (abort.signal.aborted) return;
      sendBack({ type: 'CRASHED', error: err instanceof Error ? err.message : String(err) });
    };
    const report = (check: string, problem: string | undefined): void => {
      if (abort.signal.aborted) return;
      sendBack(
        problem === undefined ? { type: 'RECOVERED', check } : { type: 'DEGRADED', check, problem },
      );
    };
    const unsubscribe = deps.pipelineHealth.subscribe(({ check, problem }) =>
      report(check, problem),
    );
    const stopProbe = watchBroker(deps.kafka, {
      ...deps.brokerProbe,
      clock: deps.clock,
      onChange: (problem) => report(BROKER_CHECK, problem),
    });
    const consumer = new BatchConsumer(deps.kafka, {
      groupId: deps.groupId,
      topics: [deps.topics.ticks.name],
      fromBeginning: true,
      // While one partition's batch is written, the next partition's is decoded and published.
      partitionsInFlight: PARTITIONS_IN_FLIGHT,
      onCrash: crashed,
    });
    consumer.start((batch, context) => deps.pipeline.handleBatch(batch, context)).catch(crashed);
    const timer = deps.clock.setInterval(() => {
      deps.pipeline.tick(abort.signal).catch((err: unknown) => {
        if (!abort.signal.aborted) deps.logger.warn('clock close failed', { err });
      });
    }, deps.tickIntervalMs);
    return () => {
      abort.abort();
      unsubscribe();
      stopProbe();
      deps.clock.clearInterval(timer);
      // Not awaited here (cleanup is synchronous); connect and shutdown await deps.stops.
      const stopping = consumer.stop();
      stopping.catch((err: unknown) => deps.logger.warn('consumer stop failed', { err }));
      deps.stops.add(stopping);
    };
  });
}
