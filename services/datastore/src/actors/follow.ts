import type { BarUpdate } from '@candlestream/core';
import { decodeBarUpdate } from '@candlestream/core';
import { BatchConsumer, watchBroker } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { DatastoreEvent } from '../datastore.machine.js';
import type { Deps } from './deps.js';

/**
 * Follows bar-updates from now on into the live view; a crash is reported, never thrown. A
 * broker probe reports DEGRADED within ~1.5 s of the broker going away (the consumer itself
 * crashes only after kafkajs' retries) and RECOVERED when it answers again. The Redis gate
 * reports the same way (check `redis`) while the API skips Redis after a failure.
 */
export function followActor(deps: Deps) {
  return fromCallback<DatastoreEvent>(({ sendBack }) => {
    let stopped = false;
    const log = deps.logger.child({ component: 'follow' });
    const crashed = (err: unknown): void => {
      if (!stopped)
        sendBack({ type: 'CRASHED', error: err instanceof Error ? err.message : String(err) });
    };
    const consumer = new BatchConsumer(deps.kafka, {
      groupId: deps.groupId,
      topics: [deps.barUpdates.name],
      fromBeginning: false,
      maxWaitTimeMs: 20,
      onCrash: crashed,
    });
    const stopProbe = watchBroker(deps.kafka, {
      ...deps.brokerProbe,
      ...(deps.clock ? { clock: deps.clock } : {}),
      onChange: (problem) => {
        if (stopped) return;
        sendBack(
          problem === undefined
            ? { type: 'RECOVERED', check: 'broker' }
            : { type: 'DEGRADED', check: 'broker', problem },
        );
      },
    });
    // Redis being skipped (answers come from storage, slower; other replicas' limits unshared).
    const stopRedisWatch = deps.redisGate?.watch((problem) => {
      if (stopped) return;
      sendBack(
        problem === undefined
          ? { type: 'RECOVERED', check: 'redis' }
          : { type: 'DEGRADED', check: 'redis', problem },
      );
    });
    let refused = 0;
    consumer
      .start(async (batch) => {
        const updates: BarUpdate[] = [];
        for (const m of batch.messages) {
          const decoded = decodeBarUpdate(m.value ?? '');
          if (decoded.ok) updates.push(decoded.value);
          else if (refused++ < 10)
            log.warn('bar update refused', { reason: decoded.reason, offset: m.offset });
        }
        await deps.live.ingest(updates);
      })
      .catch(crashed);
    return () => {
      stopped = true;
      stopProbe();
      stopRedisWatch?.();
      // Not awaited here (cleanup is synchronous); connect and shutdown await deps.stops.
      const stopping = consumer.stop();
      stopping.catch((err: unknown) => log.warn('consumer stop failed', { err }));
      deps.stops.add(stopping);
    };
  });
}
