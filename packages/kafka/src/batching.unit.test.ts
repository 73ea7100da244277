import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '@candlestream/core';
import { BatchingPublisher } from './batching.js';

const fastBackoff = { initialDelayMs: 1, maxDelayMs: 5, jitter: 0 };

describe('BatchingPublisher', () => {
  it('sends everything in push order, in batches no larger than the limit', async () => {
    const batches: number[][] = [];
    const clock = new SimulatedClock();
    const publisher = new BatchingPublisher<number>({
      clock,
      send: (batch) => {
        batches.push(batch);
        return Promise.resolve();
      },
      maxBatchItems: 7,
      lingerMs: 1,
    });
    for (let i = 0; i < 100; i++) await publisher.push(i);
    await clock.runUntil(publisher.close({ drain: true }));
    expect(batches.flat()).toEqual([...Array(100).keys()]);
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(7);
    expect(publisher.stats).toEqual({ buffered: 0, sent: 100, failures: 0 });
  });

  it('retries a failed batch until the sink recovers, losing and repeating nothing', async () => {
    const delivered: number[] = [];
    let failuresLeft = 3;
    const health: boolean[] = [];
    const clock = new SimulatedClock();
    const publisher = new BatchingPublisher<number>({
      clock,
      send: (batch) => {
        if (failuresLeft-- > 0) return Promise.reject(new Error('broker down'));
        delivered.push(...batch);
        return Promise.resolve();
      },
      backoff: fastBackoff,
      onHealth: (h) => health.push(h.ok),
    });
    for (let i = 0; i < 10; i++) await publisher.push(i);
    await clock.runUntil(publisher.flush());
    expect(delivered).toEqual([...Array(10).keys()]);
    expect(health).toEqual([false, false, false, true]);
    expect(publisher.stats.failures).toBe(3);
    await publisher.close({ drain: true });
  });

  it('makes push wait while the buffer is full (backpressure) instead of growing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const clock = new SimulatedClock();
    const publisher = new BatchingPublisher<number>({
      clock,
      send: () => gate,
      maxBatchItems: 2,
      maxBufferedItems: 4,
      lingerMs: 0,
    });
    let pushed = 0;
    const pushing = (async () => {
      for (let i = 0; i < 20; i++) {
        await publisher.push(i);
        pushed++;
      }
    })();
    await clock.advanceAsync(50); // lets the pushes run as far as they can
    // At most one batch in flight plus a full buffer; every further push waits.
    expect(pushed).toBeGreaterThanOrEqual(4);
    expect(pushed).toBeLessThanOrEqual(2 + 4);
    expect(publisher.stats.buffered).toBe(pushed);
    release();
    await pushing;
    await publisher.close({ drain: true });
    expect(publisher.stats.sent).toBe(20);
  });

  it('closing without drain stops retrying and keeps the unsent count', async () => {
    const clock = new SimulatedClock();
    const publisher = new BatchingPublisher<number>({
      clock,
      send: () => Promise.reject(new Error('down')),
      backoff: { initialDelayMs: 10_000, maxDelayMs: 10_000, jitter: 0 },
      lingerMs: 0,
    });
    await publisher.push(1);
    await publisher.push(2);
    await clock.advanceAsync(20); // the first send fails; its 10 s backoff starts
    await publisher.close({ drain: false });
    expect(publisher.stats).toMatchObject({ buffered: 2, sent: 0 });
    await expect(publisher.push(3)).rejects.toThrow('closed');
  });
});
