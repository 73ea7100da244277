import { SimulatedClock } from '@candlestream/core';
import { healthFromTags, healthOfEveryState } from '@candlestream/runtime/machine';
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, toPromise, waitFor } from 'xstate';
import type { DynamicConsumerEvent } from './dynamic-consumer.machine.js';
import { dynamicConsumerMachine } from './dynamic-consumer.machine.js';

/** The machine with scripted actors: connect fails `failures` times, then everything works. */
function scripted(failures: number) {
  const calls = { connect: 0, consume: 0, consumeStopped: 0, shutdown: 0 };
  let send: ((event: DynamicConsumerEvent) => void) | undefined;
  const machine = dynamicConsumerMachine.provide({
    actors: {
      connect: fromPromise(() => {
        calls.connect++;
        return calls.connect <= failures
          ? Promise.reject(new Error(`broker refused #${calls.connect}`))
          : Promise.resolve();
      }),
      consume: fromCallback<DynamicConsumerEvent>(({ sendBack }) => {
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
  return { actor, calls, reach, sendUp: (e: DynamicConsumerEvent) => send?.(e) };
}

describe('dynamicConsumerMachine', () => {
  it('answers /health from its tags in every state (a new state without a health tag fails here)', () => {
    const context = { attempt: 0, lastError: undefined, problems: {} };
    expect(healthOfEveryState(dynamicConsumerMachine, context)).toEqual({
      connecting: 'degraded',
      'consuming.healthy': 'ok',
      'consuming.degraded': 'degraded',
      backingOff: 'down',
      stopping: 'down',
      stopped: 'down',
    });
  });

  it('backs off after failed connects, then consumes with the failure count reset', async () => {
    const { actor, calls, reach } = scripted(2);
    expect(healthFromTags(actor.getSnapshot())).toBe('degraded');
    await reach((s) => s.matches({ consuming: 'healthy' }));
    expect(calls).toMatchObject({ connect: 3, consume: 1 });
    expect(actor.getSnapshot().context).toMatchObject({
      attempt: 0,
      lastError: 'broker refused #2',
    });
    actor.stop();
  });

  it('is degraded while the database or the broker fails inside a job, healthy once both are back', async () => {
    const { actor, sendUp, reach } = scripted(0);
    await reach((s) => s.matches({ consuming: 'healthy' }));
    sendUp({ type: 'DEGRADED', check: 'database', problem: 'connection refused' });
    sendUp({ type: 'DEGRADED', check: 'kafka', problem: 'timeout' });
    expect(healthFromTags(actor.getSnapshot())).toBe('degraded');
    sendUp({ type: 'RECOVERED', check: 'database' });
    expect(actor.getSnapshot().value).toEqual({ consuming: 'degraded' });
    expect(actor.getSnapshot().context.problems).toEqual({ kafka: 'timeout' });
    sendUp({ type: 'RECOVERED', check: 'kafka' });
    expect(actor.getSnapshot().value).toEqual({ consuming: 'healthy' });
    actor.stop();
  });

  it('a crashed consumer (the commands or a job) is stopped, down while backing off, then consumes again', async () => {
    const { actor, calls, sendUp, reach } = scripted(0);
    await reach((s) => s.matches({ consuming: 'healthy' }));
    sendUp({ type: 'CRASHED', error: 'job consumer crashed' });
    expect(calls.consumeStopped).toBe(1);
    expect(healthFromTags(actor.getSnapshot())).toBe('down');
    expect(actor.getSnapshot().context.lastError).toBe('job consumer crashed');
    await reach((s) => s.matches({ consuming: 'healthy' }) && calls.consume === 2);
    expect(calls.connect).toBe(2);
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
