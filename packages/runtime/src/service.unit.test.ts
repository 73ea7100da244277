import { SimulatedClock } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { describe, expect, it } from 'vitest';
import { assign, createMachine, fromPromise, setup } from 'xstate';
import type { HealthTag } from './machine.js';
import { Metrics } from './metrics.js';
import { startMachineService } from './service.js';

/** A service machine in miniature: waits a second, runs, and shuts down on STOP. */
function machine(order: string[]) {
  return setup({
    types: {
      context: {} as { attempt: number; lastError: string | undefined; problems: object },
      events: {} as { type: 'STOP' } | { type: 'FAIL' },
      tags: {} as HealthTag,
    },
    actors: {
      shutdown: fromPromise(() => {
        order.push('actor shutdown');
        return Promise.resolve();
      }),
    },
  }).createMachine({
    initial: 'starting',
    context: { attempt: 0, lastError: undefined, problems: {} },
    on: { STOP: '.stopping' },
    states: {
      starting: { tags: ['degraded'], after: { 1_000: 'running' } },
      running: {
        tags: ['healthy'],
        on: {
          FAIL: {
            target: 'starting',
            actions: assign({ attempt: 1, lastError: 'broker gone', problems: { broker: 'x' } }),
          },
        },
      },
      stopping: { tags: ['down'], invoke: { src: 'shutdown', onDone: 'stopped' } },
      stopped: { type: 'final', tags: ['down'] },
    },
  });
}

function start(order: string[], clock = new SimulatedClock(0)) {
  return startMachineService({
    name: 'test',
    machine: machine(order),
    logger: silentLogger(),
    metrics: new Metrics('kernel_test'),
    clock,
    ops: {
      serve: () => {
        order.push('serve');
        return Promise.resolve({
          port: 1234,
          close: () => {
            order.push('server closed');
            return Promise.resolve();
          },
        });
      },
    },
    checks: () => ({ extra: 1 }),
    resources: [
      { name: 'pool', close: () => void order.push('pool closed') },
      { name: 'producer', close: () => void order.push('producer closed') },
    ],
  });
}

describe('startMachineService', () => {
  it('answers health from the state tags, and runs the machine on the given clock', async () => {
    const clock = new SimulatedClock(0);
    const service = await start([], clock);
    expect(service.port).toBe(1234);
    expect(service.health()).toEqual({
      status: 'degraded',
      service: 'test',
      state: 'starting',
      checks: { problems: {}, extra: 1 },
    });
    clock.advance(999);
    expect(service.state()).toBe('starting');
    clock.advance(1);
    expect(service.health()).toMatchObject({ status: 'ok', state: 'running' });
    await service.stop();
    expect(service.health()).toMatchObject({ status: 'down', state: 'stopped' });
  });

  it('stops the actor first, then the server and the resources in reverse order, once', async () => {
    const order: string[] = [];
    const service = await start(order);
    await Promise.all([service.stop(), service.stop()]);
    await service.stop();
    await service.done;
    expect(order).toEqual([
      'serve',
      'actor shutdown',
      'server closed',
      'producer closed',
      'pool closed',
    ]);
  });

  it('a server that cannot listen fails the start with the resources closed', async () => {
    const order: string[] = [];
    const failing = startMachineService({
      name: 'test',
      machine: createMachine({ initial: 'a', states: { a: {} } }),
      logger: silentLogger(),
      metrics: new Metrics('kernel_test'),
      ops: { serve: () => Promise.reject(new Error('port 1 is already in use')) },
      resources: [
        { name: 'pool', close: () => void order.push('pool closed') },
        {
          name: 'broken',
          close: () => {
            order.push('broken');
            throw new Error('already gone');
          },
        },
      ],
    });
    await expect(failing).rejects.toThrow('already in use');
    expect(order).toEqual(['broken', 'pool closed']);
  });
});
