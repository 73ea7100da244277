import { AppError, decodeReplayCommand } from '@candlestream/core';
import { consumeInActor } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { SimulatorEvent } from '../simulator.machine.js';
import type { Deps } from './deps.js';

/**
 * A command older than this when read is dropped: whoever sent it has long been answered that
 * the simulator did not answer (the datastore waits seconds), and a session created now from a
 * stale `create` would play for nobody.
 */
export const COMMAND_EXPIRY_MS = 30_000;

/**
 * Consumes replay-commands into COMMAND events, in order; a batch is committed once its commands
 * are handed over (handling one is the machine's synchronous transition). A malformed command is
 * logged and skipped: nobody can act on it.
 */
export function commandsActor(deps: Deps) {
  return fromCallback<SimulatorEvent>(({ sendBack }) => {
    const log = deps.logger.child({ component: 'commands' });
    return consumeInActor(deps.kafka, {
      groupId: deps.groupId,
      topic: deps.topics.commands.name,
      fromBeginning: true,
      // A control is a click on the chart: wait at most this long for the next one.
      maxWaitTimeMs: 20,
      log,
      stops: deps.stops,
      crashed: (error) => sendBack({ type: 'CRASHED', error }),
      handle: (message, live) => {
        // Stopping, the machine would not hear of it: leave the batch uncommitted for the next run.
        if (!live()) throw new AppError('CANCELLED', 'the commands consumer is stopping');
        const decoded = decodeReplayCommand(message.value ?? '');
        if (!decoded.ok) {
          log.warn('replay command refused', { reason: decoded.reason, offset: message.offset });
          return;
        }
        const now = deps.clock.now();
        if (now - message.timestamp > COMMAND_EXPIRY_MS) {
          log.info('replay command expired', {
            session: decoded.value.session,
            command: decoded.value.type,
            ageMs: now - message.timestamp,
          });
          return;
        }
        deps.counters.commands.inc(1, { command: decoded.value.type });
        if (decoded.value.type !== 'touch')
          log.info('replay command', { ...decoded.value, v: undefined });
        sendBack({ type: 'COMMAND', command: decoded.value, at: now });
      },
    });
  });
}
