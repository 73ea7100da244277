import type { Tick } from '@candlestream/core';
import { AppError } from '@candlestream/core';
import { ensureTopics, replayTopic } from '@candlestream/kafka';
import { fromPromise } from 'xstate';
import { kafkaSink } from '../replay/kafka-sink.js';
import type { ReplayPlan } from '../session.machine.js';
import type { Deps } from './deps.js';
import { replayActor } from './replay.js';

/** The actors of a hosted session: its topic and producer made, then the engine over stored history. */
export function hostedSessionActors(deps: Deps) {
  return {
    prepare: fromPromise<void, ReplayPlan>(async ({ input }) => {
      await ensureTopics(deps.kafka, [replayTopic(input.topic)]);
      await deps.publishers.open(input.topic);
    }),
    replay: replayActor({
      source: deps.source,
      sink: (topic) => ({
        send: (trades: readonly Tick[]) => {
          const publisher = deps.publishers.get(topic);
          if (!publisher)
            return Promise.reject(new AppError('CANCELLED', `session topic ${topic} was removed`));
          return kafkaSink(publisher, topic).send(trades);
        },
      }),
      clock: deps.clock,
    }),
  };
}
