import type { BackfillReport, BackfillStatus, MarketSymbol } from '@candlestream/core';
import { SimulatedClock } from '@candlestream/core';
import type { BackfillJob } from '@candlestream/db';
import { healthOfEveryState } from '@candlestream/runtime/machine';
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, sendTo, setup, waitFor } from 'xstate';
import type { JobContext, JobOutcome } from './job.machine.js';
import { jobMachine } from './job.machine.js';

const T0 = Date.UTC(2026, 10, 1);
function job(over: Partial<BackfillJob> = {}): BackfillJob {
  return {
    id: 'j1',
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
  };
}
const report = (status: BackfillStatus, reporter: BackfillReport['reporter']): BackfillReport => ({
  v: 1,
  id: 'j1',
  symbol: 'BTC-USD' as MarketSymbol,
  status,
  reporter,
  at: T0,
});

/** The job under a parent that records JOB_ENDED, with scripted I/O. */
function run(
  input: { job: BackfillJob; endedDependencies?: Record<string, BackfillStatus> },
  startFails = 0,
) {
  const calls = { start: 0, persisted: [] as BackfillStatus[], finished: [] as JobOutcome[] };
  const ended: string[] = [];
  const child = jobMachine.provide({
    actors: {
      start: fromPromise(() => {
        calls.start++;
        return calls.start <= startFails
          ? Promise.reject(Object.assign(new Error('broker away'), { retriable: true }))
          : Promise.resolve();
      }),
      persist: fromPromise<void, { job: BackfillJob; status: BackfillStatus }>(({ input: i }) => {
        calls.persisted.push(i.status);
        return Promise.resolve();
      }),
      finish: fromPromise<void, { job: BackfillJob; outcome: JobOutcome }>(({ input: i }) => {
        calls.finished.push(i.outcome);
        return Promise.resolve();
      }),
    },
    delays: { stallTimeout: 60_000, retryDelay: 10 },
  });
  const parent = setup({ actors: { child } }).createMachine({
    invoke: { id: 'job', src: 'child', input: { endedDependencies: {}, ...input } },
    on: {
      JOB_ENDED: {
        actions: ({ event }) => ended.push(`${(event as unknown as { status: string }).status}`),
      },
      '*': { actions: sendTo('job', ({ event }) => event) },
    },
  });
  const clock = new SimulatedClock(T0);
  const actor = createActor(parent, { clock }).start();
  const jobActor = () => actor.getSnapshot().children['job']!;
  const state = () => jobActor().getSnapshot().value as unknown;
  const reach = (value: string) =>
    clock.runUntil(waitFor(jobActor(), (s) => s.matches(value as never) || s.status === 'done'));
  return { actor, calls, ended, clock, state, reach, send: (e: unknown) => actor.send(e as never) };
}

describe('jobMachine', () => {
  it('answers /health from its tags in every state', () => {
    const context: JobContext = {
      job: job(),
      pending: [],
      failedDependencies: [],
      outcome: undefined,
      attempt: 0,
    };
    expect(healthOfEveryState(jobMachine, context)).toEqual({
      routing: 'ok',
      starting: 'ok',
      retryingStart: 'degraded',
      'fetching.awaitingReport': 'ok',
      'storing.awaitingReport': 'ok',
      waiting: 'ok',
      finishing: 'ok',
      retryingFinish: 'degraded',
      ended: 'ok',
    });
  });

  it('starts (retrying a failed start), follows the reports to done, and tells the coordinator', async () => {
    const t = run({ job: job() }, 2);
    await t.reach('fetching');
    expect(t.calls.start).toBe(3);
    t.send({ type: 'REPORT', report: report('fetching', 'producer') });
    t.send({ type: 'REPORT', report: report('storing', 'dynamic-consumer') });
    await t.reach('storing');
    expect(t.calls.persisted).toEqual(['storing']);
    t.send({
      type: 'REPORT',
      report: {
        ...report('done', 'dynamic-consumer'),
        unavailable: [{ from: T0, to: T0 + 60_000, reason: 'beyond the source' }],
      },
    });
    await t.reach('ended');
    expect(t.calls.finished).toEqual([
      { status: 'done', unavailable: [{ from: T0, to: T0 + 60_000, reason: 'beyond the source' }] },
    ]);
    expect(t.ended).toEqual(['done']);
  });

  it('fails a job that goes without a report for the stall timeout, and one a worker fails', async () => {
    const stalled = run({ job: job() });
    await stalled.reach('fetching');
    await stalled.clock.advanceAsync(59_000);
    stalled.send({ type: 'REPORT', report: report('fetching', 'producer') }); // restarts the timer
    await stalled.clock.advanceAsync(59_000);
    expect(stalled.calls.finished).toEqual([]);
    await stalled.reach('ended');
    expect(stalled.calls.finished[0]).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('no report'),
    });

    const failed = run({ job: job() });
    await failed.reach('fetching');
    failed.send({
      type: 'REPORT',
      report: { ...report('failed', 'producer'), error: 'the source refused the key' },
    });
    await failed.reach('ended');
    expect(failed.calls.finished).toEqual([
      { status: 'failed', error: 'the source refused the key' },
    ]);
  });

  it('a restored job resumes where it was recorded, without starting again', async () => {
    const t = run({ job: job({ status: 'storing', topic: 'backfill.BTC-USD.j1' }) });
    await t.reach('storing');
    expect(t.calls.start).toBe(0);
  });

  it('a job whose minutes others fetch waits for them: done after all, failed if one failed', async () => {
    const ok = run({
      job: job({ ranges: [], waitsOn: ['a', 'b'] }),
      endedDependencies: { a: 'done' },
    });
    await ok.reach('waiting');
    ok.send({ type: 'DEPENDENCY_ENDED', id: 'b', status: 'done' });
    await ok.reach('ended');
    expect(ok.calls.finished).toEqual([{ status: 'done', unavailable: [] }]);
    expect(ok.calls.start).toBe(0);

    const bad = run({ job: job({ ranges: [], waitsOn: ['a', 'b'] }) });
    bad.send({ type: 'DEPENDENCY_ENDED', id: 'a', status: 'failed' });
    bad.send({ type: 'DEPENDENCY_ENDED', id: 'b', status: 'done' });
    await bad.reach('ended');
    expect(bad.calls.finished[0]).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('a'),
    });

    const already = run({
      job: job({ ranges: [], waitsOn: ['a'] }),
      endedDependencies: { a: 'done' },
    });
    await already.reach('ended');
    expect(already.ended).toEqual(['done']);
  });
});
