/**
 * `pnpm replay` as its user runs it, a process against the embedded broker and PostgreSQL: a
 * stored day replayed at speed max is exactly the stored history (raw trades, and candles where
 * the trades are gone) in (ts, id) order, and builds the stored bars at every interval; pacing
 * and the controls are checked on the real clock.
 */
import type { Bar, Tick } from '@candlestream/core';
import { aggregateTicks, diffBars, INTERVALS, MINUTE_MS } from '@candlestream/core';
import { randomTicks } from '@candlestream/core/testing';
import { needServices, spawnService, waitUntil } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareReplay } from './history/index.js';
import type { Infra } from './testing.js';
import {
  BTC,
  ended,
  ETH,
  REPLAY_SCRIPT,
  replayProcess,
  startInfra,
  TopicReader,
} from './testing.js';

const services = needServices(['postgres']);
const DAY_MS = 24 * 60 * MINUTE_MS;
const DAY = Date.UTC(2026, 10, 20);
const iso = (ms: number): string => new Date(ms).toISOString();

describe.skipIf(services.skip)('pnpm replay', () => {
  let infra: Infra;
  const stored = randomTicks({
    seed: 16,
    count: 12_000,
    from: DAY,
    spanMs: DAY_MS,
    symbols: [BTC, ETH],
    tsStepMs: 250, // ties in one ms across and within symbols: the order must break them
  });
  // A dense 10 minutes after the day for the pacing cases: a BTC trade every 100 ms.
  const PACED = DAY + DAY_MS + 60 * MINUTE_MS;
  const paced: Tick[] = Array.from({ length: 6_000 }, (_, i) => ({
    v: 1,
    symbol: BTC,
    ts: PACED + i * 100,
    price: 30_000 + (i % 50),
    size: 0.5,
    side: 'buy',
    id: `p-${String(i).padStart(5, '0')}`,
    source: 'synthetic',
  }));
  // Two hours whose raw trades are gone (their minutes stay) and one hour of imported candles.
  const CANDLES_AT = DAY + 20 * 60 * MINUTE_MS;
  const candles: Bar[] = Array.from({ length: 60 }, (_, m) => ({
    time: CANDLES_AT + m * MINUTE_MS,
    open: 200 + m,
    high: 205 + m,
    low: 198 + m,
    close: 201 + m,
    volume: 3 + m / 4,
  }));

  /** `pnpm replay` of the dense ten minutes into `session`. */
  const pacedArgs = (session: string, speed: string, ...more: string[]): string[] => [
    ...['--symbols', 'BTC-USD', '--from', iso(PACED), '--to', iso(PACED + 10 * MINUTE_MS)],
    ...['--speed', speed, '--session', session, ...more],
  ];

  beforeAll(async () => {
    infra = await startInfra(services.get('postgres').url, 'replay');
    const outside = stored.filter((t) => t.ts < CANDLES_AT || t.ts >= CANDLES_AT + 60 * MINUTE_MS);
    for (let i = 0; i < outside.length; i += 2_000) {
      await infra.repository.insertTrades(outside.slice(i, i + 2_000));
    }
    await infra.repository.insertTrades(paced);
    await infra.repository.upsertCandles(ETH, candles, 'file');
    await infra.repository.sequelize.query(
      `DELETE FROM ticks WHERE ts >= $1::timestamptz AND ts < $2::timestamptz`,
      { bind: [iso(DAY + 3 * 60 * MINUTE_MS), iso(DAY + 5 * 60 * MINUTE_MS)] },
    );
  }, 120_000);

  afterAll(async () => {
    await infra?.close();
  });

  /** Replays the stored day at speed max into `session` and reads back what it published. */
  async function replayDay(
    session: string,
  ): Promise<{ ticks: Tick[]; line: Record<string, unknown> }> {
    const p = replayProcess(infra, [
      '--symbols',
      'BTC-USD,ETH-USD',
      '--from',
      iso(DAY),
      '--to',
      iso(DAY + DAY_MS),
      '--speed',
      'max',
      '--session',
      session,
    ]);
    const line = await ended(p);
    expect(await p.exited).toBe(0);
    // The session topic exists once the replay has made it: read it from the beginning after.
    const r = await TopicReader.start(infra.kafka, `replay.${session}`);
    await r.waitFor(Number(line['messages']));
    await new Promise((resolve) => setTimeout(resolve, 500)); // nothing more arrives
    const ticks = r.ticks;
    await r.stop();
    return { ticks, line };
  }

  it('a stored day at speed max: exactly the stored history in (ts, id) order, building the stored bars at every interval; twice the same', async () => {
    const first = await replayDay('day-1');
    const { ticks } = first;
    expect(first.line).toMatchObject({ completed: true, topic: 'replay.day-1' });
    expect(ticks.length).toBe(first.line['messages']);
    // Every message is a replay of the contract's format, in order.
    expect(ticks.every((t) => t.source === 'replay')).toBe(true);
    for (let i = 1; i < ticks.length; i++) {
      expect(compareReplay(ticks[i - 1]!, ticks[i]!)).toBeLessThan(0);
    }
    // The stored raw trades of the range, all of them, in order, and nothing else besides the
    // trades that stand for minutes without raw trades.
    const raw = [
      ...(await infra.repository.readTrades(BTC, DAY, DAY + DAY_MS)),
      ...(await infra.repository.readTrades(ETH, DAY, DAY + DAY_MS)),
    ].sort(compareReplay);
    const rawIds = new Set(raw.map((t) => `${t.symbol} ${t.id}`));
    const replayedRaw = ticks.filter((t) => rawIds.has(`${t.symbol} ${t.id}`));
    expect(replayedRaw.map(({ source: _s, ...t }) => t)).toEqual(
      raw.map(({ source: _s, ...t }) => t),
    );
    const standIns = ticks.filter((t) => !rawIds.has(`${t.symbol} ${t.id}`));
    expect(standIns.length).toBeGreaterThan(0);
    expect(
      standIns.every(
        (t) =>
          (t.ts >= DAY + 3 * 60 * MINUTE_MS && t.ts < DAY + 5 * 60 * MINUTE_MS) ||
          (t.symbol === ETH && t.ts >= CANDLES_AT && t.ts < CANDLES_AT + 60 * MINUTE_MS),
      ),
    ).toBe(true);
    // Bars built from the replay are the stored bars, at every interval up to the day (the
    // stored week also holds the trades after the replayed day).
    for (const interval of INTERVALS.filter((i) => i !== '1w')) {
      const built = aggregateTicks(ticks, interval);
      for (const symbol of [BTC, ETH]) {
        const expected = await infra.repository.readBars(symbol, interval, DAY, DAY + DAY_MS);
        expect(
          diffBars(
            expected,
            built.get(symbol) ?? [],
            interval === '1m' ? {} : { volumeRelTol: 1e-9 },
          ),
          `${symbol} ${interval}`,
        ).toEqual([]);
      }
    }
    const second = await replayDay('day-2');
    expect(second.ticks).toEqual(ticks);
  });

  it('at speed 60 ten minutes take ten seconds, within 3%', async () => {
    const p = replayProcess(infra, pacedArgs('paced', '60'));
    const line = await ended(p, 60_000);
    expect(await p.exited).toBe(0);
    const reader = await TopicReader.start(infra.kafka, 'replay.paced');
    await reader.waitFor(paced.length);
    const received = reader.received;
    await reader.stop();
    expect(received.map((r) => r.tick.id)).toEqual(paced.map((t) => t.id));
    // Measured two ways: the replay's own wall time, and the broker's record times.
    expect(Number(line['wallMs'])).toBeGreaterThan(9_700);
    expect(Number(line['wallMs'])).toBeLessThan(10_300);
    const span = received.at(-1)!.at - received[0]!.at;
    const expectedSpan = (paced.at(-1)!.ts - paced[0]!.ts) / 60;
    expect(Math.abs(span - expectedSpan) / expectedSpan).toBeLessThan(0.03);
  });

  it('SIGUSR1 pauses (3 s publish nothing), SIGUSR2 resumes with the next message', async () => {
    const p = replayProcess(infra, pacedArgs('signals', '10'));
    await p.waitForLine((l) => l['msg'] === 'replay started', 60_000);
    await waitUntil(
      'the topic',
      async () => (await listTopics()).includes('replay.signals'),
      30_000,
    );
    const reader = await TopicReader.start(infra.kafka, 'replay.signals');
    await reader.waitFor(100, 30_000);
    p.child.kill('SIGUSR1');
    await p.waitForLine((l) => l['msg'] === 'replay control' && l['type'] === 'PAUSE', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500)); // what was in flight arrives
    const paused = reader.received.length;
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect(reader.received.length).toBe(paused);
    const resumedAt = Date.now();
    p.child.kill('SIGUSR2');
    await reader.waitFor(paused + 1, 10_000);
    const next = reader.received[paused]!;
    expect(next.tick.id).toBe(paced[paused]!.id);
    expect(next.at).toBeGreaterThanOrEqual(resumedAt - 50);
    await p.kill('SIGTERM');
    await reader.stop();
  });

  it('over --control-port: seek makes the next message the first at or after T; step publishes exactly one bar', async () => {
    const p = replayProcess(infra, pacedArgs('controls', '1', '--paused', '--control-port', '0'));
    const { port } = await p.waitForLine((l) => l['msg'] === 'control listening', 60_000);
    const url = `http://127.0.0.1:${String(port)}`;
    const post = async (path: string): Promise<Record<string, unknown>> => {
      const response = await fetch(`${url}${path}`, { method: 'POST' });
      expect(response.status, path).toBe(200);
      return (await response.json()) as Record<string, unknown>;
    };
    const bad = await fetch(`${url}/seek?to=yesterday`, { method: 'POST' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/ISO-8601/);

    // Seek to 3 min 20.05 s in: the first trade at or after it is at 3 min 20.1 s.
    const target = PACED + 3 * MINUTE_MS + 20_050;
    await post(`/seek?to=${iso(target)}`);
    await post('/step');
    await waitUntil(
      'the topic',
      async () => (await listTopics()).includes('replay.controls'),
      30_000,
    );
    const reader = await TopicReader.start(infra.kafka, 'replay.controls');
    const bar = paced.filter((t) => t.ts >= target && t.ts < PACED + 4 * MINUTE_MS);
    await reader.waitFor(bar.length, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(reader.ticks.map((t) => t.id)).toEqual(bar.map((t) => t.id));
    const status = (await (await fetch(`${url}/status`)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ state: 'paused', simTime: PACED + 4 * MINUTE_MS });
    // A second step: exactly the next minute.
    await post('/step');
    const next = paced.filter((t) => t.ts >= PACED + 4 * MINUTE_MS && t.ts < PACED + 5 * MINUTE_MS);
    await reader.waitFor(bar.length + next.length, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(reader.ticks.slice(bar.length).map((t) => t.id)).toEqual(next.map((t) => t.id));
    expect(await post('/speed?x=1000')).toMatchObject({ speed: 1000 });
    await post('/resume');
    const line = await ended(p, 60_000);
    expect(line['completed']).toBe(true);
    expect(await p.exited).toBe(0);
    await reader.waitFor(
      bar.length + next.length + paced.filter((t) => t.ts >= PACED + 5 * MINUTE_MS).length,
    );
    await reader.stop();
  });

  it('ten sessions at once stay apart: each topic holds exactly its own range, in order', async () => {
    const sessions = Array.from({ length: 10 }, (_, i) => ({
      name: `many-${String(i)}`,
      from: PACED + i * MINUTE_MS,
      to: PACED + (i + 1) * MINUTE_MS,
      speed: i % 2 === 0 ? 'max' : '600',
    }));
    const runs = sessions.map((s) =>
      replayProcess(infra, [
        '--symbols',
        'BTC-USD',
        '--from',
        iso(s.from),
        '--to',
        iso(s.to),
        '--speed',
        s.speed,
        '--session',
        s.name,
      ]),
    );
    const codes = await Promise.all(runs.map((p) => p.exited));
    expect(codes).toEqual(sessions.map(() => 0));
    for (const s of sessions) {
      const reader = await TopicReader.start(infra.kafka, `replay.${s.name}`);
      const own = paced.filter((t) => t.ts >= s.from && t.ts < s.to);
      await reader.waitFor(own.length, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(
        reader.ticks.map((t) => t.id),
        s.name,
      ).toEqual(own.map((t) => t.id));
      await reader.stop();
    }
  }, 180_000);

  it('no broker: exit 1 with the reason and where it looked', async () => {
    const p = spawnService(
      REPLAY_SCRIPT,
      { KAFKA_BROKERS: '127.0.0.1:1', DATABASE_URL: infra.db.url, LOG_LEVEL: 'error' },
      ['--symbols', 'BTC-USD', '--from', iso(DAY), '--to', iso(DAY + MINUTE_MS)],
    );
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toMatch(
      /^pnpm replay: .*ECONNREFUSED.*is the broker at 127\.0\.0\.1:1 running\?/m,
    );
  });

  it('bad arguments: one line, exit 2', async () => {
    const p = replayProcess(infra, ['--symbols', 'BTC-USD', '--from', 'soon', '--to', iso(DAY)]);
    expect(await p.exited).toBe(2);
    expect(p.stderr().trim().split('\n')).toEqual([
      'pnpm replay: --from must be ISO-8601 or epoch ms, not "soon" (--help for usage)',
    ]);
  });

  async function listTopics(): Promise<string[]> {
    const admin = infra.kafka.admin();
    await admin.connect();
    try {
      return await admin.listTopics();
    } finally {
      await admin.disconnect();
    }
  }
});
