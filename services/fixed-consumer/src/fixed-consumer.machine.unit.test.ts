import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, toPromise, waitFor } from 'xstate';
import { SimulatedClock } from '@candlestream/core';
import type { FixedConsumerEvent } from './fixed-consumer.machine.js';
import { fixedConsumerMachine } from './fixed-consumer.machine.js';
import { healthFromTags, healthOfEveryState } from '@candlestream/runtime/machine';

/** The machine with scripted actors: connect fails `failures` times, then everything works. */
function scripted(failures: number) {
  const calls = { connect: 0, restore: 0, consume: 0, consumeStopped: 0, shutdown: 0 };
  let send: ((event: FixedConsumerEvent) => void) | undefined;
  const machine = fixedConsumerMachine.provide({
    actors: {
      connect: fromPromise(() => {
        calls.connect++;
        return calls.connect <= failures
          ? Promise.reject(new Error(`broker refused #${calls.connect}`))
          : Promise.resolve();
      }),
      restore: fromPromise(() => {
        calls.restore++;
        return Promise.resolve();
      }),
      consume: fromCallback<FixedConsumerEvent>(({ sendBack }) => {
        calls.consume++;
        send = sendBack;
        return () => {
          calls.consumeStopped++;
        };
      }),
      shutdown: fromPromise(() => {
        calls.shutdown++;
        return Promise.resolve();
      }),
    },
    delays: { restartDelay: 1 },
  });
  // The machine's delays run on a simulated clock; reach() fires them until the state holds.
  const clock = new SimulatedClock();
  const actor = createActor(machine, { clock }).start();
  type Snapshot = ReturnType<typeof actor.getSnapshot>;
  const reach = (done: (s: Snapshot) => boolean) => clock.runUntil(waitFor(actor, done));
  return { actor, calls, reach, sendUp: (e: FixedConsumerEvent) => send?.(e) };
}

describe('fixedConsumerMachine', () => {
  it('answers /health from its tags in every state (a new state without a health tag fails here)', () => {
    const context = { attempt: 0, lastError: undefined, problems: {} };
    expect(healthOfEveryState(fixedConsumerMachine, context)).toEqual({
      connecting: 'degraded',
      restoring: 'degraded',
      'consuming.healthy': 'ok',
      'consuming.degraded': 'degraded',
      backingOff: 'down',
      stopping: 'down',
      stopped: 'down',
    });
  });

  it('backs off after failed connects, then restores before it consumes', async () => {
    const { actor, calls, reach } = scripted(2);
    await reach((s) => s.matches({ consuming: 'healthy' }));
    expect(calls).toMatchObject({ connect: 3, restore: 1, consume: 1 });
    // The failure count is reset once consuming, so the next failure backs off from the start.
    expect(actor.getSnapshot().context).toMatchObject({
      attempt: 0,
      lastError: 'broker refused #2',
    });
    actor.stop();
  });

  it('is degraded while a dependency fails and healthy once every one is back', async () => {
    const { actor, sendUp, reach } = scripted(0);
    await reach((s) => s.matches({ consuming: 'healthy' }));
    sendUp({ type: 'DEGRADED', check: 'database', problem: 'connection refused' });
    sendUp({ type: 'DEGRADED', check: 'cache', problem: 'timeout' });
    expect(actor.getSnapshot().value).toEqual({ consuming: 'degraded' });
    sendUp({ type: 'RECOVERED', check: 'database' });
    expect(actor.getSnapshot().value).toEqual({ consuming: 'degraded' });
    expect(actor.getSnapshot().context.problems).toEqual({ cache: 'timeout' });
    sendUp({ type: 'RECOVERED', check: 'cache' });
    expect(actor.getSnapshot().value).toEqual({ consuming: 'healthy' });
    actor.stop();
  });

  it('answers health from state tags: degraded while starting or degraded, down while backing off', async () => {
    const { actor, sendUp, reach } = scripted(1);
    expect(healthFromTags(actor.getSnapshot())).toBe('degraded');
    await reach((s) => s.matches({ consuming: 'healthy' }));
    expect(healthFromTags(actor.getSnapshot())).toBe('ok');
    sendUp({ type: 'DEGRADED', check: 'broker', problem: 'broker not answering' });
    expect(healthFromTags(actor.getSnapshot())).toBe('degraded');
    sendUp({ type: 'CRASHED', error: 'broker gone' });
    expect(healthFromTags(actor.getSnapshot())).toBe('down');
    actor.stop();
  });

  it('a crashed consumer is stopped, and the machine reconnects and restores again', async () => {
    const { actor, calls, sendUp, reach } = scripted(0);
    await reach((s) => s.matches({ consuming: 'healthy' }));
    sendUp({ type: 'CRASHED', error: 'coordinator is not aware of this member' });
    expect(calls.consumeStopped).toBe(1);
    await reach((s) => s.matches({ consuming: 'healthy' }) && calls.consume === 2);
    expect(calls).toMatchObject({ connect: 2, restore: 2 });
    actor.stop();
  });

  it('STOP from any state shuts down once and ends in the final state', async () => {
    const { actor, calls, reach } = scripted(1000);
    await reach((s) => s.matches('backingOff'));
    actor.send({ type: 'STOP' });
    actor.send({ type: 'STOP' });
    await toPromise(actor);
    expect(actor.getSnapshot().value).toBe('stopped');
    expect(calls.shutdown).toBe(1);
  });
});
