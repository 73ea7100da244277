import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, toPromise, waitFor } from 'xstate';
import { SimulatedClock } from '@candlestream/core';
import type { DatastoreEvent } from './datastore.machine.js';
import { datastoreMachine } from './datastore.machine.js';
import { healthFromTags, healthOfEveryState } from '@candlestream/runtime/machine';

function scripted(failures: number) {
  const calls = {
    connect: 0,
    follow: 0,
    followStopped: 0,
    backfills: 0,
    backfillsStopped: 0,
    replays: 0,
    replaysStopped: 0,
    shutdown: 0,
  };
  let send: ((event: DatastoreEvent) => void) | undefined;
  let sendFromBackfills: ((event: DatastoreEvent) => void) | undefined;
  let sendFromReplays: ((event: DatastoreEvent) => void) | undefined;
  const machine = datastoreMachine.provide({
    actors: {
      connect: fromPromise(() =>
        ++calls.connect <= failures
          ? Promise.reject(new Error('database refused'))
          : Promise.resolve(),
      ),
      follow: fromCallback<DatastoreEvent>(({ sendBack }) => {
        calls.follow++;
        send = sendBack;
        return () => {
          calls.followStopped++;
        };
      }),
      followBackfills: fromCallback<DatastoreEvent>(({ sendBack }) => {
        calls.backfills++;
        sendFromBackfills = sendBack;
        return () => {
          calls.backfillsStopped++;
        };
      }),
      followReplays: fromCallback<DatastoreEvent>(({ sendBack }) => {
        calls.replays++;
        sendFromReplays = sendBack;
        return () => {
          calls.replaysStopped++;
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
  return {
    actor,
    calls,
    reach,
    sendUp: (e: DatastoreEvent) => send?.(e),
    sendFromBackfills: (e: DatastoreEvent) => sendFromBackfills?.(e),
    sendFromReplays: (e: DatastoreEvent) => sendFromReplays?.(e),
  };
}

describe('datastoreMachine', () => {
  it('answers /health from its tags in every state (a new state without a health tag fails here)', () => {
    const context = { attempt: 0, lastError: undefined, problems: {} };
    expect(healthOfEveryState(datastoreMachine, context)).toEqual({
      connecting: 'degraded',
      'live.healthy': 'ok',
      'live.degraded': 'degraded',
      backingOff: 'degraded',
      stopping: 'down',
      stopped: 'down',
    });
  });

  it('follows backfill-status beside bar-updates; its crash restarts both after a backoff', async () => {
    const { actor, calls, reach, sendFromBackfills } = scripted(0);
    await reach((s) => s.matches('live'));
    expect(calls).toMatchObject({ follow: 1, backfills: 1 });
    sendFromBackfills({ type: 'CRASHED', error: 'backfill-status consumer crashed' });
    expect(actor.getSnapshot().value).toBe('backingOff');
    expect(actor.getSnapshot().context.lastError).toBe('backfill-status consumer crashed');
    expect(calls).toMatchObject({ followStopped: 1, backfillsStopped: 1 });
    await reach((s) => s.matches('live'));
    expect(calls).toMatchObject({ follow: 2, backfills: 2, replays: 2 });
    actor.stop();
  });

  it('follows replay-status beside them; its crash restarts all three after a backoff', async () => {
    const { actor, calls, reach, sendFromReplays } = scripted(0);
    await reach((s) => s.matches('live'));
    expect(calls).toMatchObject({ follow: 1, backfills: 1, replays: 1 });
    sendFromReplays({ type: 'CRASHED', error: 'replay-status consumer crashed' });
    expect(actor.getSnapshot().value).toBe('backingOff');
    expect(calls).toMatchObject({ followStopped: 1, backfillsStopped: 1, replaysStopped: 1 });
    await reach((s) => s.matches('live'));
    expect(calls).toMatchObject({ follow: 2, backfills: 2, replays: 2 });
    actor.stop();
  });

  it('backs off while storage is away, then follows bar-updates', async () => {
    const { actor, calls, reach } = scripted(2);
    expect(actor.getSnapshot().value).toBe('connecting');
    await reach((s) => s.matches('live'));
    expect(calls).toMatchObject({ connect: 3, follow: 1 });
    actor.stop();
  });

  it('a crashed follower is stopped and started again through connect', async () => {
    const { actor, calls, sendUp, reach } = scripted(0);
    await reach((s) => s.matches('live'));
    sendUp({ type: 'CRASHED', error: 'coordinator moved' });
    expect(actor.getSnapshot().context.lastError).toBe('coordinator moved');
    expect(calls.followStopped).toBe(1);
    await reach((s) => s.matches('live') && calls.follow === 2);
    expect(calls.connect).toBe(2);
    actor.stop();
  });

  it('regression: a broker that stops answering the probe makes health degraded until it answers again', async () => {
    const { actor, sendUp, reach } = scripted(0);
    await reach((s) => s.matches('live'));
    expect(healthFromTags(actor.getSnapshot())).toBe('ok');
    sendUp({ type: 'DEGRADED', check: 'broker', problem: 'broker not answering' });
    expect(actor.getSnapshot().value).toEqual({ live: 'degraded' });
    expect(healthFromTags(actor.getSnapshot())).toBe('degraded');
    expect(actor.getSnapshot().context.problems).toEqual({ broker: 'broker not answering' });
    sendUp({ type: 'RECOVERED', check: 'broker' });
    expect(healthFromTags(actor.getSnapshot())).toBe('ok');
    actor.stop();
  });

  it('STOP shuts down once and ends in the final state', async () => {
    const { actor, calls, reach } = scripted(0);
    await reach((s) => s.matches('live'));
    actor.send({ type: 'STOP' });
    actor.send({ type: 'STOP' });
    await toPromise(actor);
    expect(actor.getSnapshot().value).toBe('stopped');
    expect(calls).toMatchObject({ shutdown: 1, followStopped: 1 });
  });
});
