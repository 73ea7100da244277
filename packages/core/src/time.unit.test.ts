import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Clock, parseInstant, SimulatedClock, systemClock } from './time.js';

describe('parseInstant', () => {
  it.each([
    ['2024-01-01', Date.UTC(2024, 0, 1)],
    ['2024-01-01T12:30', Date.UTC(2024, 0, 1, 12, 30)],
    ['2024-01-01T12:30:15', Date.UTC(2024, 0, 1, 12, 30, 15)],
    ['2024-01-01T12:30:15.250Z', Date.UTC(2024, 0, 1, 12, 30, 15, 250)],
    ['2024-01-01T00:00:00+02:00', Date.UTC(2023, 11, 31, 22)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['1700000000123', 1_700_000_000_123],
  ])('reads %s as UTC', (text, expected) => {
    expect(parseInstant(text)).toBe(expected);
  });

  it.each([
    'yesterday',
    '',
    '2024-13-01',
    '2023-02-29',
    '2024-02-30',
    '2024-01-01T24:00',
    '2024/01/01',
    '1e12',
  ])('refuses %j', (text) => {
    expect(parseInstant(text)).toBeUndefined();
  });
});

describe('SimulatedClock', () => {
  it('moves only when told to', () => {
    const clock = new SimulatedClock(1_000);
    expect(clock.now()).toBe(1_000);
    expect(clock.advance(500)).toBe(1_500);
    clock.set(42);
    expect(clock.now()).toBe(42);
  });

  it('fires due timers in time order, ties in the order they were set, each at its due time', () => {
    const clock = new SimulatedClock(1_000);
    const fired: string[] = [];
    const at = (name: string) => () => fired.push(`${name}@${clock.now()}`);
    clock.setTimeout(at('c'), 300);
    clock.setTimeout(at('a'), 100);
    clock.setTimeout(at('b1'), 200);
    clock.setTimeout(at('b2'), 200);
    clock.setTimeout(at('zero'), 0);
    expect(fired).toEqual([]); // nothing fires until the clock moves
    clock.advance(250);
    expect(fired).toEqual(['zero@1000', 'a@1100', 'b1@1200', 'b2@1200']);
    expect(clock.now()).toBe(1_250);
    clock.advanceTo(1_300);
    expect(fired.at(-1)).toBe('c@1300');
    expect(clock.pendingTimers).toBe(0);
  });

  it('a cleared timer never fires; clearing a fired, cleared or absent one is harmless', () => {
    const clock = new SimulatedClock();
    const fired: number[] = [];
    const kept = clock.setTimeout(() => fired.push(1), 10);
    const dropped = clock.setTimeout(() => fired.push(2), 10);
    clock.clearTimeout(dropped);
    clock.advance(10);
    expect(fired).toEqual([1]);
    clock.clearTimeout(kept);
    clock.clearTimeout(dropped);
    clock.clearTimeout(undefined);
    clock.advance(100);
    expect(fired).toEqual([1]);
  });

  it('intervals fire once per period passed until cleared, in order with other timers', () => {
    const clock = new SimulatedClock();
    const fired: string[] = [];
    const every = clock.setInterval(() => fired.push(`i@${clock.now()}`), 100);
    clock.setTimeout(() => fired.push(`t@${clock.now()}`), 150);
    clock.advance(350);
    expect(fired).toEqual(['i@100', 't@150', 'i@200', 'i@300']);
    clock.clearInterval(every);
    clock.advance(1_000);
    expect(fired).toHaveLength(4);
    expect(clock.pendingTimers).toBe(0);
  });

  it('an interval can clear itself, and a 0 ms interval ticks every 1 ms', () => {
    const clock = new SimulatedClock();
    let ticks = 0;
    const every = clock.setInterval(() => {
      if (++ticks === 3) clock.clearInterval(every);
    }, 0);
    clock.advance(10);
    expect(ticks).toBe(3);
    expect(clock.now()).toBe(10);
  });

  it('a timer set by a timer fires in the same advance when it falls due inside it', () => {
    const clock = new SimulatedClock();
    const fired: number[] = [];
    clock.setTimeout(() => {
      fired.push(clock.now());
      clock.setTimeout(() => fired.push(clock.now()), 50);
      clock.setTimeout(() => fired.push(clock.now()), 500);
    }, 100);
    clock.advance(200);
    expect(fired).toEqual([100, 150]);
    clock.advance(400);
    expect(fired).toEqual([100, 150, 600]);
  });

  it('a timer can cancel a later one due at the same instant', () => {
    const clock = new SimulatedClock();
    const fired: string[] = [];
    clock.setTimeout(() => {
      fired.push('first');
      clock.clearTimeout(second);
    }, 10);
    const second = clock.setTimeout(() => fired.push('second'), 10);
    clock.advance(10);
    expect(fired).toEqual(['first']);
  });

  it('set() forwards fires what falls due; backwards fires nothing', () => {
    const clock = new SimulatedClock(100);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 50);
    clock.set(50);
    expect(fired).toEqual([]);
    clock.set(1_000);
    expect(fired).toEqual([150]);
  });

  it('advanceAsync lets awaited work run between timers, so an awaiting loop keeps pace', async () => {
    const clock = new SimulatedClock();
    const woke: number[] = [];
    const wait = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await wait(100);
        await Promise.resolve(); // more awaited work before the next timer is set
        woke.push(clock.now());
      }
    })();
    await clock.advanceAsync(250);
    expect(woke).toEqual([100, 200]);
    expect(clock.now()).toBe(250);
    await clock.runAllAsync();
    await loop;
    expect(woke).toEqual([100, 200, 300]);
    // The synchronous form fires only the first timer: the loop has not set the next one yet.
    const sync = new SimulatedClock();
    let count = 0;
    void (async () => {
      for (;;) {
        await new Promise<void>((resolve) => sync.setTimeout(resolve, 10));
        count++;
      }
    })();
    sync.advance(100);
    expect(count).toBe(0);
    await Promise.resolve();
    expect(count).toBe(1);
  });

  it('keeps whole milliseconds: a fractional delay rounds up', () => {
    const clock = new SimulatedClock();
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 20.4);
    clock.setInterval(() => fired.push(clock.now()), 0.5);
    clock.advance(2);
    clock.advance(19);
    expect(fired).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 21,
    ]);
  });

  it('runUntil fires timers until the work settles, and fails on work no timer will end', async () => {
    const clock = new SimulatedClock();
    const wait = (ms: number) => new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
    const work = (async () => {
      await wait(1_000);
      await Promise.resolve();
      await wait(60_000);
      return clock.now();
    })();
    clock.setTimeout(() => undefined, 10 * 60_000); // later than the work: not fired
    await expect(clock.runUntil(work)).resolves.toBe(61_000);
    expect(clock.now()).toBe(61_000);
    await expect(clock.runUntil(new Promise(() => undefined), 1_000)).rejects.toThrow(
      /still pending/,
    );
    const failing = (async () => {
      await wait(5);
      throw new Error('boom');
    })();
    await expect(clock.runUntil(failing)).rejects.toThrow('boom');
  });

  it('throws instead of spinning forever on a runaway interval', () => {
    const clock = new SimulatedClock();
    clock.setInterval(() => undefined, 1);
    expect(() => clock.advance(Number.MAX_SAFE_INTEGER)).toThrow(/timers in one run/);
  });
});

describe('systemClock', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("is the host's time and timers (checked without waiting on them)", () => {
    const set = vi.spyOn(globalThis, 'setTimeout');
    const clear = vi.spyOn(globalThis, 'clearTimeout');
    const every = vi.spyOn(globalThis, 'setInterval');
    const stop = vi.spyOn(globalThis, 'clearInterval');
    const clock: Clock = systemClock;
    const fn = (): void => undefined;
    const timer = clock.setTimeout(fn, 25);
    expect(set).toHaveBeenCalledWith(fn, 25);
    clock.clearTimeout(timer);
    expect(clear).toHaveBeenCalledWith(timer);
    const interval = clock.setInterval(fn, 50);
    expect(every).toHaveBeenCalledWith(fn, 50);
    clock.clearInterval(interval);
    expect(stop).toHaveBeenCalledWith(interval);
    expect(Math.abs(clock.now() - Date.now())).toBeLessThan(1_000);
  });
});
