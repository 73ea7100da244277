import type { MarketSymbol } from '@candlestream/core';
import { SimulatedClock } from '@candlestream/core';
import type { BackfillJob } from '@candlestream/db';
import { healthOfEveryState } from '@candlestream/runtime/machine';
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, waitFor } from 'xstate';
import type { CoordinatorContext, CoordinatorEvent, PlannedJob } from './coordinator.machine.js';
import { coordinatorMachine } from './coordinator.machine.js';
import { jobMachine } from './job.machine.js';

const T0 = Date.UTC(2026, 10, 1);
const planned = (id: string, over: Partial<BackfillJob> = {}): PlannedJob => ({
  job: {
    id,
    symbol: 'BTC-USD' as MarketSymbol,
    from: T0,
    to: T0 + 3_600_000,
    status: 'queued',
    ranges: [{ from: T0, to: T0 + 3_600_000 }],
    waitsOn: [],
    progress: { done: 0, total: 60 },
    topic: null,
    error: null,
    unavailable: [],
    requestedBy: 'api',
    createdAt: T0,
    updatedAt: T0,
    startedAt: null,
    finishedAt: null,
    topicDeletedAt: null,
    ...over,
  },
  endedDependencies: {},
});

/** The coordinator with scripted I/O; jobs start at once and finish when told. */
function scripted(restored: PlannedJob[] = []) {
  const started: string[] = [];
  let send: ((e: CoordinatorEvent) => void) | undefined;
  const job = jobMachine.provide({
    actors: {
      start: fromPromise(({ input }: { input: BackfillJob }) => {
        started.push(input.id);
        return Promise.resolve();
      }),
      persist: fromPromise(() => Promise.resolve()),
      finish: fromPromise(() => Promise.resolve()),
    },
  });
  const machine = coordinatorMachine.provide({
    actors: {
      connect: fromPromise(() => Promise.resolve()),
      restore: fromPromise(() => Promise.resolve(restored)),
      requests: fromCallback<CoordinatorEvent>(({ sendBack }) => {
        send = sendBack;
      }),
      reports: fromCallback(() => undefined),
      sweeper: fromCallback(() => undefined),
      shutdown: fromPromise(() => Promise.resolve()),
      job,
    },
  });
  const clock = new SimulatedClock(T0);
  const actor = createActor(machine, { clock, input: { maxJobs: 2 } }).start();
  const settle = () => clock.advanceAsync(0);
  return { actor, started, settle, send: (e: CoordinatorEvent) => send!(e) };
}

describe('coordinatorMachine', () => {
  it('answers /health from its tags in every state', () => {
    const context: CoordinatorContext = {
      attempt: 0,
      lastError: undefined,
      problems: {},
      maxJobs: 2,
      queue: [],
      jobs: {},
      fetching: [],
    };
    expect(healthOfEveryState(coordinatorMachine, context)).toEqual({
      connecting: 'degraded',
      restoring: 'degraded',
      'running.healthy': 'ok',
      'running.degraded': 'degraded',
      backingOff: 'down',
      stopping: 'down',
      stopped: 'down',
    });
  });

  it('runs at most maxJobs fetching jobs; the next starts when one ends; a repeated job is ignored', async () => {
    const t = scripted();
    await waitFor(t.actor, (s) => s.matches('running'));
    for (const id of ['a', 'b', 'c']) t.send({ type: 'JOB_PLANNED', planned: planned(id) });
    t.send({ type: 'JOB_PLANNED', planned: planned('a') });
    await t.settle();
    expect(t.started).toEqual(['a', 'b']);
    expect(t.actor.getSnapshot().context.queue.map((p) => p.job.id)).toEqual(['c']);
    t.send({
      type: 'REPORT',
      report: {
        v: 1,
        id: 'a',
        symbol: 'BTC-USD' as MarketSymbol,
        status: 'done',
        reporter: 'dynamic-consumer',
        at: T0,
      },
    });
    await t.settle();
    expect(t.started).toEqual(['a', 'b', 'c']);
    expect(Object.keys(t.actor.getSnapshot().context.jobs).sort()).toEqual(['b', 'c']);
  });

  it('a waiting job needs no slot and ends when the job it waits on does', async () => {
    const t = scripted([planned('a', { status: 'fetching', topic: 'backfill.BTC-USD.a' })]);
    await waitFor(t.actor, (s) => s.matches('running'));
    t.send({ type: 'JOB_PLANNED', planned: planned('w', { ranges: [], waitsOn: ['a'] }) });
    await t.settle();
    expect(Object.keys(t.actor.getSnapshot().context.jobs).sort()).toEqual(['a', 'w']);
    expect(t.started).toEqual([]); // the restored job was fetching already
    t.send({
      type: 'REPORT',
      report: {
        v: 1,
        id: 'a',
        symbol: 'BTC-USD' as MarketSymbol,
        status: 'done',
        reporter: 'dynamic-consumer',
        at: T0,
      },
    });
    await t.settle();
    expect(t.actor.getSnapshot().context.jobs).toEqual({});
  });
});
