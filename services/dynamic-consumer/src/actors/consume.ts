import { errorMessage } from '@candlestream/core';
import { BatchConsumer, watchBroker } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { DynamicConsumerEvent } from '../dynamic-consumer.machine.js';
import type { Deps } from './deps.js';

/** The check name of the broker probe (the jobs' own publish failures are `kafka`). */
export const BROKER_CHECK = 'broker';

/**
 * Runs the consumer of backfill-commands, whose batches run the jobs (commands.ts), and a
 * broker probe. Dependency trouble inside a job's batch is retried there and reported as
 * DEGRADED/RECOVERED, as is a broker that stops answering the probe; a consumer that crashes
 * (the commands' or a job's) is reported as CRASHED and the machine starts over. Cleanup (on
 * leaving the state) stops the consumer, whose held batch stops the jobs' consumers.
 */
export function consumeActor(deps: Deps) {
  return fromCallback<DynamicConsumerEvent>(({ sendBack }) => {
    const abort = new AbortController();
    const crashed = (err: unknown): void => {
      if (abort.signal.aborted) return;
      sendBack({ type: 'CRASHED', error: errorMessage(err) });
    };
    const report = (check: string, problem: string | undefined): void => {
      if (abort.signal.aborted) return;
      sendBack(
        problem === undefined ? { type: 'RECOVERED', check } : { type: 'DEGRADED', check, problem },
      );
    };
    const unsubscribe = deps.jobsHealth.subscribe(({ check, problem }) => report(check, problem));
    const stopProbe = watchBroker(deps.kafka, {
      ...deps.brokerProbe,
      clock: deps.clock,
      onChange: (problem) => report(BROKER_CHECK, problem),
    });
    const consumer = new BatchConsumer(deps.kafka, {
      groupId: deps.groupId,
      topics: [deps.topics.commands.name],
      fromBeginning: true,
      onCrash: crashed,
    });
    consumer.start((batch, context) => deps.commands.handleBatch(batch, context)).catch(crashed);
    return () => {
      abort.abort();
      unsubscribe();
      stopProbe();
      // Not awaited here (cleanup is synchronous); connect and shutdown await deps.stops.
      const stopping = consumer.stop();
      stopping.catch((err: unknown) => deps.logger.warn('consumer stop failed', { err }));
      deps.stops.add(stopping);
    };
  });
}
