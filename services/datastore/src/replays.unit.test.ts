import type { ReplayCommand, ReplaySessionStatus } from '@candlestream/core';
import { AppError, parseSymbol, SimulatedClock } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { describe, expect, it } from 'vitest';
import { CREATE_TIMEOUT_MS, ReplayDesk, STALE_AFTER_MS } from './replays.js';

const T0 = Date.UTC(2026, 10, 20);
const BTC = parseSymbol('BTC-USD');
const IDLE_MS = 30_000;

function desk() {
  const clock = new SimulatedClock(T0);
  const sent: ReplayCommand[] = [];
  let failing = false;
  const replays = new ReplayDesk({
    publish: (command) => {
      if (failing) return Promise.reject(new Error('broker away'));
      sent.push(command);
      return Promise.resolve();
    },
    clock,
    logger: silentLogger(),
    idleTimeoutMs: IDLE_MS,
  });
  return { clock, sent, replays, fail: () => (failing = true) };
}

function status(session: string, over: Partial<ReplaySessionStatus> = {}): ReplaySessionStatus {
  return {
    v: 1,
    session,
    state: 'paused',
    symbols: [BTC],
    from: T0,
    to: T0 + 3_600_000,
    speed: 1,
    simTime: T0,
    percent: 0,
    messages: 0,
    rate: 0,
    topic: `replay.${session}`,
    at: T0,
    ...over,
  };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('ReplayDesk', () => {
  it('creates a session: one create command, answered once the simulator is past preparing', async () => {
    const { sent, replays } = desk();
    const created = replays.create({ symbols: [BTC], from: T0, to: T0 + 3_600_000, speed: 1 });
    await settle();
    expect(sent).toEqual([
      expect.objectContaining({ type: 'create', symbols: [BTC], from: T0, speed: 1 }),
    ]);
    const session = sent[0]!.session;
    expect(session).toMatch(/^chart-[0-9a-f]{16}$/);
    replays.onStatus(status(session, { state: 'preparing' }));
    await settle();
    replays.onStatus(status(session));
    const view = await created;
    expect(view).toMatchObject({ id: session, state: 'paused', from: '2026-11-20T00:00:00.000Z' });
  });

  it('a simulator that does not answer is UNAVAILABLE, and so is a broker that refuses', async () => {
    const silent = desk();
    const created = silent.replays.create({ symbols: [BTC], from: T0, to: T0 + 1, speed: 1 });
    await settle();
    silent.clock.advance(CREATE_TIMEOUT_MS);
    await expect(created).rejects.toThrow(/did not answer within 5 s/);
    const away = desk();
    away.fail();
    const refused = away.replays.create({ symbols: [BTC], from: T0, to: T0 + 1, speed: 1 });
    await expect(refused).rejects.toSatisfy((err) => AppError.is(err, 'UNAVAILABLE'));
  });

  it('controls: 404 for an unknown session, 409 once ended, end of an ended one is fine', async () => {
    const { sent, replays } = desk();
    await expect(replays.control('chart-x', { type: 'play' })).rejects.toSatisfy((err) =>
      AppError.is(err, 'NOT_FOUND'),
    );
    replays.onStatus(status('chart-a'));
    await replays.control('chart-a', { type: 'step', interval: '5m' });
    expect(sent.at(-1)).toEqual({ v: 1, type: 'step', session: 'chart-a', interval: '5m' });
    replays.onStatus(status('chart-a', { state: 'ended', reason: 'done' }));
    await expect(replays.control('chart-a', { type: 'play' })).rejects.toThrow(/has ended/);
    expect((await replays.control('chart-a', { type: 'end' })).state).toBe('ended');
  });

  it('a live session gone silent is answered failed with where it stopped; an ended one stays', () => {
    const { clock, replays } = desk();
    replays.onStatus(status('chart-a', { state: 'playing', simTime: T0 + 90_000, messages: 42 }));
    replays.onStatus(status('chart-b', { state: 'ended', reason: 'done' }));
    clock.advance(STALE_AFTER_MS - 1);
    expect(replays.view('chart-a')?.state).toBe('playing');
    clock.advance(1);
    expect(replays.view('chart-a')).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(
        /simulator stopped reporting .* stopped at 2026-11-20T00:01:30.000Z after 42 trades/,
      ) as unknown,
    });
    expect(replays.view('chart-b')?.state).toBe('ended');
    // It reports again (a broker blip): live again.
    replays.onStatus(status('chart-a', { state: 'playing' }));
    expect(replays.view('chart-a')?.state).toBe('playing');
  });

  it('touches watched live sessions within the idle timeout, until released', () => {
    const { clock, sent, replays } = desk();
    replays.onStatus(status('chart-a'));
    replays.onStatus(status('chart-b', { state: 'ended', reason: 'quit' }));
    const releaseA = replays.watch('chart-a');
    replays.watch('chart-b');
    clock.advance(IDLE_MS / 3);
    const touches = () => sent.filter((c) => c.type === 'touch').map((c) => c.session);
    expect(touches()).toEqual(['chart-a']);
    releaseA();
    clock.advance(IDLE_MS);
    expect(touches()).toEqual(['chart-a']);
    replays.close();
    expect(clock.pendingTimers).toBe(0);
  });
});
