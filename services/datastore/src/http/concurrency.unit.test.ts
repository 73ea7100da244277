import { AppError, SimulatedClock } from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import { ConcurrencyGate } from './concurrency.js';

const QUEUE_MS = 2_000;

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'started',
    (err: unknown) => (AppError.is(err) ? err.code : 'other'),
  );

describe('ConcurrencyGate', () => {
  it('queues within a client share, refuses beyond it, and gives a freed slot to the oldest waiter that fits', async () => {
    const clock = new SimulatedClock(0);
    const gate = new ConcurrencyGate({ perClient: 1, total: 2, queueMs: QUEUE_MS, clock });
    const a1 = await gate.acquire('a');
    const a2 = gate.acquire('a'); // waits: a's share is in use
    expect(await codeOf(gate.acquire('a'))).toBe('RATE_LIMITED'); // a's queue is full
    const b1 = await gate.acquire('b'); // b has a share and the total has room
    const c1 = gate.acquire('c'); // waits: the total is in use
    expect(gate.load).toEqual({ running: 2, queued: 2 });
    b1(); // c fits now; a does not (a1 still runs)
    (await c1)();
    a1();
    const release = await a2;
    release();
    release(); // idempotent
    expect(gate.load).toEqual({ running: 0, queued: 0 });
  });

  it('a wait longer than queueMs is refused: 429 for its own share, 503 when the process is busy', async () => {
    const clock = new SimulatedClock(0);
    const gate = new ConcurrencyGate({ perClient: 1, total: 1, queueMs: QUEUE_MS, clock });
    await gate.acquire('a');
    const own = codeOf(gate.acquire('a'));
    const busy = codeOf(gate.acquire('b'));
    clock.advance(QUEUE_MS);
    expect(await own).toBe('RATE_LIMITED');
    expect(await busy).toBe('UNAVAILABLE');
    expect(gate.load.queued).toBe(0);
  });
});
