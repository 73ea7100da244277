import type { ReplayCommand } from '@candlestream/core';
import { parseSymbol } from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise } from 'xstate';
import type { ControlEvent, SessionInput } from './session.machine.js';
import { sessionMachine } from './session.machine.js';
import type { OutboxEvent, SimulatorEvent } from './simulator.machine.js';
import { reportToParent, simulatorMachine } from './simulator.machine.js';

const T0 = Date.UTC(2026, 10, 20);
const IDLE_MS = 10_000;
const BTC = parseSymbol('BTC-USD');
const engineStatus = (state: 'playing' | 'paused') => ({
  state,
  simTime: T0 + 1_000,
  percent: 5,
  speed: 1,
  messages: 7,
  rate: 3,
  lag: { p50: 0, p99: 0, max: 0 },
  wallMs: 10,
});

/** The machine with recording outbox and sessions whose engine reports as told. */
function simulator(options: { maxSessions?: number; orphans?: string[] } = {}) {
  const outbox: OutboxEvent[] = [];
  const controls = new Map<string, ControlEvent[]>();
  const session = sessionMachine.provide({
    actions: { report: reportToParent },
    actors: {
      prepare: fromPromise(() => Promise.resolve()),
      replay: fromCallback<ControlEvent, SessionInput>(({ input, receive, sendBack }) => {
        const topic = input.plan.topic;
        controls.set(topic, []);
        sendBack({
          type: 'REPLAY.STATUS',
          status: engineStatus(input.paused ? 'paused' : 'playing'),
        });
        receive((event) => {
          controls.get(topic)!.push(event);
          if (event.type === 'QUIT')
            sendBack({
              type: 'REPLAY.ENDED',
              summary: {
                messages: 7,
                wallMs: 1,
                effectiveSpeed: 1,
                lag: { p50: 0, p99: 0, max: 0 },
                completed: false,
              },
            });
        });
      }),
    },
  });
  const machine = simulatorMachine.provide({
    actors: {
      connect: fromPromise(() => Promise.resolve({ orphanTopics: options.orphans ?? [], at: T0 })),
      commands: fromCallback(() => {}),
      outbox: fromCallback<OutboxEvent>(({ receive }) => receive((e) => outbox.push(e))),
      ticker: fromCallback(() => {}),
      shutdown: fromPromise(() => Promise.resolve()),
      session,
    },
  });
  const actor = createActor(machine, {
    input: { maxSessions: options.maxSessions ?? 10, idleMs: IDLE_MS },
  });
  actor.start();
  const command = (c: Record<string, unknown>, at = T0): void =>
    actor.send({ type: 'COMMAND', command: { v: 1, ...c } as ReplayCommand, at });
  const create = (session: string, at = T0): void =>
    command({ type: 'create', session, symbols: [BTC], from: T0, to: T0 + 60_000, speed: 1 }, at);
  const published = (session: string) =>
    outbox.flatMap((e) => (e.type === 'PUBLISH' && e.status.session === session ? [e.status] : []));
  return { actor, outbox, controls, command, create, published };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('simulator machine', () => {
  it('hosts a created session paused, forwards its controls and publishes what it reports', async () => {
    const s = simulator();
    await settle();
    expect(s.actor.getSnapshot().value).toEqual({ running: 'healthy' });
    s.create('chart-a');
    s.create('chart-a'); // a repeated delivery: still one session
    await settle();
    expect(Object.keys(s.actor.getSnapshot().context.sessions)).toEqual(['chart-a']);
    expect(s.published('chart-a').map((p) => p.state)).toEqual(['preparing', 'paused']);
    expect(s.published('chart-a').at(-1)).toMatchObject({
      topic: 'replay.chart-a',
      symbols: [BTC],
      simTime: T0 + 1_000,
      messages: 7,
    });
    s.command({ type: 'play', session: 'chart-a' });
    s.command({ type: 'step', session: 'chart-a', interval: '1m' });
    s.command({ type: 'seek', session: 'chart-a', to: T0 + 5 });
    s.command({ type: 'speed', session: 'chart-a', speed: 'max' });
    s.command({ type: 'touch', session: 'chart-a' });
    expect(s.controls.get('replay.chart-a')!.map((c) => c.type)).toEqual([
      'RESUME',
      'STEP',
      'SEEK',
      'SPEED',
    ]);
    s.command({ type: 'end', session: 'chart-a' });
    await settle();
    expect(s.published('chart-a').at(-1)).toMatchObject({ state: 'ended', reason: 'quit' });
    // Asked again once ended, it says so again; nothing reaches the engine.
    s.command({ type: 'play', session: 'chart-a' });
    expect(s.published('chart-a').at(-1)).toMatchObject({ state: 'ended' });
  });

  it('answers a command for a session it does not host, and a create beyond its limit, as failed', async () => {
    const s = simulator({ maxSessions: 1 });
    await settle();
    s.command({ type: 'play', session: 'chart-gone' });
    expect(s.published('chart-gone')).toEqual([
      expect.objectContaining({
        state: 'failed',
        error: expect.stringMatching(/does not host/) as unknown,
      }),
    ]);
    s.create('chart-a');
    s.create('chart-b');
    await settle();
    expect(s.published('chart-b')).toEqual([
      expect.objectContaining({
        state: 'failed',
        error: expect.stringMatching(/at most 1 sessions/) as unknown,
      }),
    ]);
  });

  it('removes sessions nobody touched: a running one ends as idle, then goes with its topic', async () => {
    const s = simulator({ orphans: ['replay.chart-old'] });
    await settle();
    s.create('chart-a', T0);
    s.create('chart-b', T0);
    await settle();
    s.command({ type: 'touch', session: 'chart-b' }, T0 + IDLE_MS);
    s.actor.send({ type: 'SWEEP', now: T0 + IDLE_MS } satisfies SimulatorEvent);
    await settle();
    expect(s.published('chart-a').at(-1)).toMatchObject({ state: 'ended', reason: 'idle' });
    expect(s.published('chart-b').at(-1)?.state).toBe('paused');
    expect(s.outbox.filter((e) => e.type === 'DELETE_TOPICS')).toEqual([
      { type: 'DELETE_TOPICS', topics: ['replay.chart-old'] },
    ]);
    s.actor.send({ type: 'SWEEP', now: T0 + IDLE_MS + 1 });
    expect(Object.keys(s.actor.getSnapshot().context.sessions)).toEqual(['chart-b']);
    expect(s.outbox.filter((e) => e.type === 'DELETE_TOPICS').at(-1)).toEqual({
      type: 'DELETE_TOPICS',
      topics: ['replay.chart-a'],
    });
  });
});
