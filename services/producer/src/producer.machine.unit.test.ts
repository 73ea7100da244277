import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, toPromise, waitFor } from 'xstate';
import type { ProducerEvent } from './producer.machine.js';
import { producerMachine } from './producer.machine.js';
import { healthFromTags, healthOfEveryState } from '@candlestream/runtime/machine';
import { SimulatedClock } from '@candlestream/core';

function scripted() {
  const calls = {
    connect: 0,
    stream: 0,
    streamStopped: 0,
    drain: 0,
    shutdown: 0,
    backfill: 0,
    backfillStopped: 0,
  };
  let send: ((event: ProducerEvent) => void) | undefined;
  let sendBackfill: ((event: ProducerEvent) => void) | undefined;
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
      backfill: fromCallback<ProducerEvent>(({ sendBack }) => {
        calls.backfill++;
        sendBackfill = sendBack;
        return () => {
          calls.backfillStopped++;
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
    delays: { restartDelay: 1, backfillRestartDelay: 5 },
  });
  // Delayed transitions run on a simulated clock that the tests advance (xstate's `clock` option).
  const clock = new SimulatedClock();
  const actor = createActor(machine, { clock }).start();
  return {
    actor,
    calls,
    clock,
    sendUp: (e: ProducerEvent) => send?.(e),
    backfillUp: (e: ProducerEvent) => sendBackfill?.(e),
  };
}

describe('producerMachine', () => {
  it('answers /health from its tags in every state (a new state without a health tag fails here)', () => {
    const context = { attempt: 0, lastError: undefined, problems: {}, backfillAttempt: 0 };
    // Each leaf with the other region in its initial state (backfill running, live connecting).
    expect(healthOfEveryState(producerMachine, context)).toEqual({
      'live.connecting': 'degraded',
      'live.streaming.healthy': 'ok',
      'live.streaming.degraded': 'degraded',
      'live.backingOff': 'down',
      'live.draining': 'degraded',
      'live.done': 'ok',
      'live.failed': 'down',
      'live.stopping': 'down',
      'live.stopped': 'down',
      'backfill.running.healthy': 'degraded',
      'backfill.running.degraded': 'degraded',
      'backfill.backingOff': 'degraded',
      'backfill.stopped': 'degraded',
    });
  });

  it('shows a failing broker or upstream as degraded, and recovers', async () => {
    const { actor, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ live: { streaming: 'healthy' } }));
    sendUp({ type: 'DEGRADED', check: 'broker', problem: 'ECONNREFUSED' });
    expect(actor.getSnapshot().value).toEqual({
      live: { streaming: 'degraded' },
      backfill: { running: 'healthy' },
    });
    expect(actor.getSnapshot().context.problems).toEqual({ broker: 'ECONNREFUSED' });
    sendUp({ type: 'RECOVERED', check: 'broker' });
    expect(actor.getSnapshot().value).toEqual({
      live: { streaming: 'healthy' },
      backfill: { running: 'healthy' },
    });
    actor.stop();
  });

  it('restarts a source that failed retriably, after a backoff, through connect', async () => {
    const { actor, calls, clock, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ live: { streaming: 'healthy' } }));
    sendUp({ type: 'SOURCE_FAILED', error: 'socket hang up', retriable: true });
    expect(actor.getSnapshot().value).toEqual({
      live: 'backingOff',
      backfill: { running: 'healthy' },
    });
    expect(calls.streamStopped).toBe(1);
    await clock.advanceAsync(1);
    await waitFor(
      actor,
      (s) => s.matches({ live: { streaming: 'healthy' } }) && calls.stream === 2,
    );
    expect(calls.connect).toBe(2);
    expect(actor.getSnapshot().context).toMatchObject({ attempt: 1, lastError: 'socket hang up' });
    actor.stop();
  });

  it('a source that cannot succeed leaves it failed (alive for /health), not retrying', async () => {
    const { actor, calls, clock, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ live: { streaming: 'healthy' } }));
    sendUp({ type: 'SOURCE_FAILED', error: 'API key refused', retriable: false });
    expect(actor.getSnapshot().value).toMatchObject({ live: 'failed' });
    expect(actor.getSnapshot().status).toBe('active');
    await clock.advanceAsync(60_000); // long past any restart delay
    expect(calls.stream).toBe(1);
    actor.send({ type: 'STOP' });
    await toPromise(actor);
    expect(calls.shutdown).toBe(1);
  });

  it('a finite source drains the buffer and finishes', async () => {
    const { actor, calls, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ live: { streaming: 'healthy' } }));
    sendUp({ type: 'SOURCE_DONE' });
    await toPromise(actor);
    expect(actor.getSnapshot().value).toEqual({ live: 'done', backfill: 'stopped' });
    expect(calls).toMatchObject({ drain: 1, shutdown: 0, backfillStopped: 1 });
  });

  it('a failing backfill region is degraded and starts again, while live streaming goes on untouched', async () => {
    const { actor, calls, clock, sendUp, backfillUp } = scripted();
    await waitFor(actor, (s) => s.matches({ live: { streaming: 'healthy' } }));
    backfillUp({ type: 'BACKFILL_DEGRADED', problem: 'job j1: fetch: 503' });
    expect(actor.getSnapshot().value).toEqual({
      live: { streaming: 'healthy' },
      backfill: { running: 'degraded' },
    });
    expect(healthFromTags(actor.getSnapshot())).toBe('degraded');
    expect(actor.getSnapshot().context.problems).toEqual({ backfill: 'job j1: fetch: 503' });
    // The live region's own recoveries do not wait on the backfill check.
    sendUp({ type: 'DEGRADED', check: 'broker', problem: 'slow' });
    sendUp({ type: 'RECOVERED', check: 'broker' });
    expect(actor.getSnapshot().matches({ live: { streaming: 'healthy' } })).toBe(true);
    backfillUp({ type: 'BACKFILL_RECOVERED' });
    expect(healthFromTags(actor.getSnapshot())).toBe('ok');
    expect(actor.getSnapshot().context.problems).toEqual({});

    backfillUp({ type: 'BACKFILL_FAILED', error: 'consumer crashed' });
    expect(actor.getSnapshot().value).toEqual({
      live: { streaming: 'healthy' },
      backfill: 'backingOff',
    });
    expect(calls.backfillStopped).toBe(1);
    expect(actor.getSnapshot().context).toMatchObject({
      backfillAttempt: 1,
      problems: { backfill: 'consumer crashed' },
    });
    await clock.advanceAsync(5);
    expect(actor.getSnapshot().value).toMatchObject({ backfill: { running: 'healthy' } });
    expect(calls).toMatchObject({ backfill: 2, stream: 1, streamStopped: 0, connect: 1 });
    expect(healthFromTags(actor.getSnapshot())).toBe('ok');
    actor.stop();
  });

  it('a live source backing off leaves the backfilling region running', async () => {
    const { actor, calls, clock, sendUp } = scripted();
    await waitFor(actor, (s) => s.matches({ live: { streaming: 'healthy' } }));
    sendUp({ type: 'SOURCE_FAILED', error: 'socket hang up', retriable: true });
    await clock.advanceAsync(1);
    await waitFor(
      actor,
      (s) => s.matches({ live: { streaming: 'healthy' } }) && calls.stream === 2,
    );
    expect(calls).toMatchObject({ backfill: 1, backfillStopped: 0 });
    actor.stop();
  });

  it('STOP stops both regions once: shutdown runs once and the backfill actor ends', async () => {
    const { actor, calls } = scripted();
    await waitFor(actor, (s) => s.matches({ live: { streaming: 'healthy' } }));
    actor.send({ type: 'STOP' });
    actor.send({ type: 'STOP' });
    await toPromise(actor);
    expect(actor.getSnapshot().value).toEqual({ live: 'stopped', backfill: 'stopped' });
    expect(calls).toMatchObject({ shutdown: 1, backfillStopped: 1, streamStopped: 1 });
  });
});
