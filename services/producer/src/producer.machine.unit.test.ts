import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, toPromise, waitFor } from 'xstate';
import type { ProducerEvent } from './producer.machine.js';
import { producerMachine } from './producer.machine.js';
import { healthOfEveryState } from '@candlestream/runtime/machine';
import { SimulatedClock } from '@candlestream/core';

function scripted() {
  const calls = { connect: 0, stream: 0, streamStopped: 0, drain: 0, shutdown: 0 };
  let send: ((event: ProducerEvent) => void) | undefined;
  const machine = producerMachine.provide({
    actors: {
      connect: fromPromise(() => {
        calls.connect++;
        return Promise.resolve();
      }),
      stream: fromCallback<ProducerEvent>(({ sendBack }) => {
        calls.stream++;
        send = sendBack;
        return () => {
          calls.streamStopped++;
        };
      }),
      drain: fromPromise(() => {
        calls.drain++;
        return Promise.resolve();
      }),
      shutdown: fromPromise(() => {
        calls.shutdown++;
        return Promise.resolve();
      }),
    },
    delays: { restartDelay: 1 },
  });
  // Delayed transitions run on a simulated clock that the tests advance (xstate's `clock` option).
  const clock = new SimulatedClock();
  const actor = createActor(machine, { clock }).start();
  return { actor, calls, clock, sendUp: (e: ProducerEvent) => send?.(e) };
}

describe('producerMachine', () => {
  it('answers /health from its tags in every state (a new state without a health tag fails here)', () => {
    const context = { attempt: 0, lastError: undefined, problems: {} };
    expect(healthOfEveryState(producerMachine, context)).toEqual({
      connecting: 'degraded',
      'streaming.healthy': 'ok',
      'streaming.degraded': 'degraded',
      backingOff: 'down',
      draining: 'degraded',
      done: 'ok',
      failed: 'down',
      stopping: 'down',
      stopped: 'down',
    });
  });

  it('shows a failing broker or upstream as degraded, and recovers', async () => {
    const { actor, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ streaming: 'healthy' }));
    sendUp({ type: 'DEGRADED', check: 'broker', problem: 'ECONNREFUSED' });
    expect(actor.getSnapshot().value).toEqual({ streaming: 'degraded' });
    expect(actor.getSnapshot().context.problems).toEqual({ broker: 'ECONNREFUSED' });
    sendUp({ type: 'RECOVERED', check: 'broker' });
    expect(actor.getSnapshot().value).toEqual({ streaming: 'healthy' });
    actor.stop();
  });

  it('restarts a source that failed retriably, after a backoff, through connect', async () => {
    const { actor, calls, clock, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ streaming: 'healthy' }));
    sendUp({ type: 'SOURCE_FAILED', error: 'socket hang up', retriable: true });
    expect(actor.getSnapshot().value).toBe('backingOff');
    expect(calls.streamStopped).toBe(1);
    await clock.advanceAsync(1);
    await waitFor(actor, (s) => s.matches({ streaming: 'healthy' }) && calls.stream === 2);
    expect(calls.connect).toBe(2);
    expect(actor.getSnapshot().context).toMatchObject({ attempt: 1, lastError: 'socket hang up' });
    actor.stop();
  });

  it('a source that cannot succeed leaves it failed (alive for /health), not retrying', async () => {
    const { actor, calls, clock, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ streaming: 'healthy' }));
    sendUp({ type: 'SOURCE_FAILED', error: 'API key refused', retriable: false });
    expect(actor.getSnapshot().value).toBe('failed');
    expect(actor.getSnapshot().status).toBe('active');
    await clock.advanceAsync(60_000); // long past any restart delay
    expect(calls.stream).toBe(1);
    actor.send({ type: 'STOP' });
    await toPromise(actor);
    expect(calls.shutdown).toBe(1);
  });

  it('a finite source drains the buffer and finishes', async () => {
    const { actor, calls, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ streaming: 'healthy' }));
    sendUp({ type: 'SOURCE_DONE' });
    await toPromise(actor);
    expect(actor.getSnapshot().value).toBe('done');
    expect(calls).toMatchObject({ drain: 1, shutdown: 0 });
  });
});
