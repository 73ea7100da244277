import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise } from 'xstate';
import { parseSymbol } from '@candlestream/core';
import type { ControlEvent, SessionInput } from './session.machine.js';
import { sessionMachine } from './session.machine.js';

const summary = {
  messages: 3,
  wallMs: 10,
  effectiveSpeed: 60,
  lag: { p50: 0, p99: 1, max: 2 },
  completed: true,
};

/** The machine with a replay actor that records the controls it was handed. */
function session(paused: boolean, prepare: () => Promise<void> = () => Promise.resolve()) {
  const received: ControlEvent[] = [];
  let end: (() => void) | undefined;
  const machine = sessionMachine.provide({
    actors: {
      prepare: fromPromise(prepare),
      replay: fromCallback<ControlEvent, SessionInput>(({ receive, sendBack }) => {
        receive((event) => received.push(event));
        end = () => sendBack({ type: 'REPLAY.ENDED', summary });
      }),
    },
  });
  const plan = {
    range: { symbols: [parseSymbol('BTC-USD')], from: 0, to: 60_000 },
    speed: 1,
    topic: 'replay.t',
  };
  const actor = createActor(machine, { input: { paused, plan } });
  actor.start();
  return { actor, received, end: () => end?.() };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('session machine', () => {
  it('prepares, plays, and follows the controls it hands to the replay', async () => {
    const { actor, received, end } = session(false);
    await settle();
    expect(actor.getSnapshot().value).toEqual({ running: 'playing' });
    expect(actor.getSnapshot().hasTag('healthy')).toBe(true);
    actor.send({ type: 'PAUSE' });
    expect(actor.getSnapshot().value).toEqual({ running: 'paused' });
    actor.send({ type: 'SEEK', to: 5 });
    actor.send({ type: 'STEP', interval: '1m' });
    expect(actor.getSnapshot().hasTag('paused')).toBe(true);
    actor.send({ type: 'RESUME' });
    actor.send({ type: 'STEP', interval: '1m' });
    expect(actor.getSnapshot().value).toEqual({ running: 'paused' });
    actor.send({ type: 'SPEED', speed: 'max' });
    expect(received.map((e) => e.type)).toEqual([
      'PAUSE',
      'SEEK',
      'STEP',
      'RESUME',
      'STEP',
      'SPEED',
    ]);
    end();
    expect(actor.getSnapshot().status).toBe('done');
    expect(actor.getSnapshot().hasTag('ended')).toBe(true);
    expect(actor.getSnapshot().context.summary).toEqual(summary);
  });

  it('starts paused when asked, and a failed prepare fails the session with the reason', async () => {
    const waiting = session(true);
    await settle();
    expect(waiting.actor.getSnapshot().value).toEqual({ running: 'paused' });
    const failing = session(false, () => Promise.reject(new Error('broker unreachable')));
    await settle();
    expect(failing.actor.getSnapshot().value).toBe('failed');
    expect(failing.actor.getSnapshot().hasTag('down')).toBe(true);
    expect(failing.actor.getSnapshot().context.error).toMatch(/broker unreachable/);
  });
});
