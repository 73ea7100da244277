/**
 * The chart's replay sessions as their users meet them: the simulator service and the datastore
 * as processes, over the embedded broker and PostgreSQL. A session is created over HTTP, driven
 * with its controls, watched over /stream; its bars equal the stored ones; sessions stay apart;
 * a session whose simulator was killed says so, and idle sessions are removed with their topics.
 */
import type { Bar, Tick } from '@candlestream/core';
import { INTERVAL_MS, MINUTE_MS } from '@candlestream/core';
import { listTopics } from '@candlestream/kafka';
import type { ServiceProcess } from '@candlestream/testkit';
import { needServices, spawnService, waitUntil } from '@candlestream/testkit';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Infra } from './testing.js';
import { BTC, ETH, startInfra, TopicReader } from './testing.js';

const services = needServices(['postgres']);
const SIMULATOR_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const DATASTORE_MAIN = fileURLToPath(new URL('../../datastore/src/main.ts', import.meta.url));
const START = Date.UTC(2026, 10, 20);
const HOURS = 2;
const IDLE_MS = 6_000;
const iso = (ms: number): string => new Date(ms).toISOString();

/** A BTC trade every 2 s and an ETH trade every 3 s over two hours. */
function trades(): Tick[] {
  const out: Tick[] = [];
  for (let t = 0; t < HOURS * 60 * MINUTE_MS; t += 1_000) {
    const price = 30_000 + Math.round(400 * Math.sin(t / 600_000) + (t % 7_000) / 100);
    if (t % 2_000 === 0)
      out.push({
        v: 1,
        symbol: BTC,
        ts: START + t,
        price,
        size: 0.25 + (t % 5_000) / 10_000,
        side: 'buy',
        id: `b${String(t)}`,
        source: 'synthetic',
      });
    if (t % 3_000 === 0)
      out.push({
        v: 1,
        symbol: ETH,
        ts: START + t,
        price: price / 15,
        size: 1,
        side: 'sell',
        id: `e${String(t)}`,
        source: 'synthetic',
      });
  }
  return out;
}

interface View {
  id: string;
  state: string;
  simTime: string | null;
  messages: number;
  topic: string;
  reason: string | null;
  error: string | null;
}

/** A /stream client that keeps every message. */
class StreamClient {
  readonly messages: Record<string, unknown>[] = [];
  readonly #socket: WebSocket;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
    });
  }

  static async open(base: string): Promise<StreamClient> {
    const socket = new WebSocket(`${base.replace('http', 'ws')}/stream`);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return new StreamClient(socket);
  }

  send(message: Record<string, unknown>): void {
    this.#socket.send(JSON.stringify(message));
  }

  /** The bars of `session` at `interval`, as a chart applies them: newest version of each time. */
  bars(session: string, interval = '1m'): Map<number, { bar: Bar; final: boolean }> {
    const out = new Map<number, { bar: Bar; final: boolean }>();
    for (const m of this.messages) {
      if (m['type'] !== 'bar' || m['session'] !== session || m['interval'] !== interval) continue;
      const raw = m['bar'] as Record<string, number | string>;
      const time = Date.parse(String(raw['time']));
      out.set(time, {
        bar: {
          time,
          open: Number(raw['open']),
          high: Number(raw['high']),
          low: Number(raw['low']),
          close: Number(raw['close']),
          volume: Number(raw['volume']),
        },
        final: m['final'] === true,
      });
    }
    return out;
  }

  close(): void {
    this.#socket.close();
  }
}

describe.skipIf(services.skip)('replay sessions (simulator service + datastore)', () => {
  let infra: Infra;
  let simulator: ServiceProcess;
  let datastore: ServiceProcess;
  let base: string;
  const stored = trades();

  const env = (): Record<string, string> => ({
    KAFKA_BROKERS: infra.brokers,
    DATABASE_URL: infra.db.url,
    HEALTH_PORT: '0',
    PORT: '0',
    SYMBOLS: 'BTC-USD,ETH-USD',
    REPLAY_IDLE_TIMEOUT_MS: String(IDLE_MS),
    LOG_LEVEL: 'info',
  });
  const startSimulator = async (): Promise<ServiceProcess> => {
    const p = spawnService(SIMULATOR_MAIN, env());
    await p.waitForLine((l) => l['to'] === 'running.healthy', 60_000);
    return p;
  };

  const post = async (path: string, body: unknown): Promise<{ status: number; body: View }> => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as View };
  };
  const get = async (id: string): Promise<View> =>
    (await (await fetch(`${base}/replays/${id}`)).json()) as View;
  const create = async (symbols: string[], from: number, to: number): Promise<View> => {
    const res = await post('/replays', { symbols, from: iso(from), to: iso(to) });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const waitState = async (id: string, state: string, timeoutMs = 60_000): Promise<View> => {
    let view: View | undefined;
    try {
      await waitUntil(
        `replay ${id} ${state}`,
        async () => (view = await get(id)).state === state,
        timeoutMs,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last seen ${JSON.stringify(view)}`);
    }
    return view!;
  };
  const storedIn = (symbols: string[], from: number, to: number): Tick[] =>
    stored.filter((t) => symbols.includes(t.symbol) && t.ts >= from && t.ts < to);

  beforeAll(async () => {
    infra = await startInfra(services.get('postgres').url, 'sessions');
    for (let i = 0; i < stored.length; i += 2_000)
      await infra.repository.insertTrades(stored.slice(i, i + 2_000));
    simulator = await startSimulator();
    datastore = spawnService(DATASTORE_MAIN, env());
    const listening = await datastore.waitForLine((l) => l['msg'] === 'listening', 60_000);
    base = `http://127.0.0.1:${String(listening['port'])}`;
    await datastore.waitForLine((l) => l['to'] === 'live.healthy', 60_000);
  }, 180_000);

  afterAll(async () => {
    await datastore?.kill();
    await simulator?.kill();
    await infra?.close();
  });

  it('refuses bad requests with the reason', async () => {
    const bad = await post('/replays', { symbols: ['BTC-USD'], from: 'yesterday' });
    expect(bad.status).toBe(400);
    expect((bad.body as unknown as { error: string }).error).toMatch(/from/);
    const unknown = await post('/replays', { symbols: ['DOGE-USD'], from: iso(START) });
    expect(unknown.status).toBe(404);
    const backwards = await post('/replays', {
      symbols: ['BTC-USD'],
      from: iso(START),
      to: iso(START - 1),
    });
    expect(backwards.status).toBe(400);
    expect((await fetch(`${base}/replays/chart-nope`)).status).toBe(404);
    const action = await post('/replays/chart-nope', { action: 'fly' });
    expect(action.status).toBe(400);
  });

  it('steps one bar, then plays to the end: the bars streamed equal the stored ones', async () => {
    const from = START;
    const to = START + 30 * MINUTE_MS;
    const view = await create(['BTC-USD'], from, to);
    expect(view.state).toBe('paused');
    expect(view.topic).toBe(`replay.${view.id}`);
    const client = await StreamClient.open(base);
    client.send({ type: 'subscribe', session: view.id, symbol: 'BTC-USD', interval: '5m' });
    client.send({ type: 'subscribe', session: view.id, symbol: 'BTC-USD', interval: '1m' });
    const reader = await TopicReader.start(infra.kafka, view.topic);

    // Step one 5-minute bar: exactly its trades are published, and the session stays paused.
    const stepped = await post(`/replays/${view.id}`, { action: 'step', interval: '5m' });
    expect(stepped.status).toBe(202);
    const firstBar = storedIn([BTC], from, from + INTERVAL_MS['5m']);
    await reader.waitFor(firstBar.length);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(reader.ticks.map((t) => t.id)).toEqual(firstBar.map((t) => t.id));
    expect((await get(view.id)).state).toBe('paused');
    await waitUntil(
      'the stepped bar on /stream',
      () => client.bars(view.id, '5m').has(from),
      10_000,
    );

    // Play at max to the end.
    expect((await post(`/replays/${view.id}`, { action: 'speed', speed: 'max' })).status).toBe(202);
    expect((await post(`/replays/${view.id}`, { action: 'play' })).status).toBe(202);
    const done = await waitState(view.id, 'ended');
    expect(done.reason).toBe('done');
    const expected = storedIn([BTC], from, to);
    expect(done.messages).toBe(expected.length);
    await reader.waitFor(expected.length);
    expect(reader.ticks.map((t) => t.id)).toEqual(expected.map((t) => t.id));
    expect(reader.ticks.every((t) => t.source === 'replay')).toBe(true);

    // The 1m bars built from the replay are the stored ones (the last is still forming).
    const ohlcv = (await (
      await fetch(
        `${base}/ohlcv?symbol=BTC-USD&interval=1m&startDate=${iso(from)}&endDate=${iso(to)}`,
      )
    ).json()) as {
      bars: {
        time: string;
        open: number;
        high: number;
        low: number;
        close: number;
        volume: number;
      }[];
    };
    await waitUntil('all 30 minutes on /stream', () => client.bars(view.id).size === 30, 20_000);
    const streamed = client.bars(view.id);
    for (const bar of ohlcv.bars) {
      const got = streamed.get(Date.parse(bar.time));
      expect(got, bar.time).toBeDefined();
      expect(got!.bar).toMatchObject({
        open: bar.open,
        high: bar.high,
        low: bar.low,
        close: bar.close,
      });
      expect(got!.bar.volume).toBeCloseTo(bar.volume, 9);
    }
    expect(ohlcv.bars).toHaveLength(30);
    const statuses = client.messages.filter((m) => m['type'] === 'replay');
    expect(statuses.at(-1)).toMatchObject({ session: view.id, status: { state: 'ended' } });
    // Ended: a control is refused with the reason, ending again is fine.
    expect((await post(`/replays/${view.id}`, { action: 'play' })).status).toBe(409);
    expect((await post(`/replays/${view.id}`, { action: 'end' })).status).toBe(202);
    client.close();
    await reader.stop();
  });

  it('pauses, seeks and keeps ten concurrent sessions apart', async () => {
    const sessions: { view: View; symbols: string[]; from: number; to: number }[] = [];
    for (let i = 0; i < 10; i++) {
      const symbols = i % 2 === 0 ? ['BTC-USD'] : ['BTC-USD', 'ETH-USD'];
      const from = START + i * 7 * MINUTE_MS;
      const to = from + (5 + i) * MINUTE_MS;
      sessions.push({ view: await create(symbols, from, to), symbols, from, to });
    }
    const readers = await Promise.all(
      sessions.map((s) => TopicReader.start(infra.kafka, s.view.topic)),
    );
    // The first plays at 60x and is paused; the others at max.
    const [slow, ...fast] = sessions;
    await post(`/replays/${slow!.view.id}`, { action: 'speed', speed: 60 });
    await post(`/replays/${slow!.view.id}`, { action: 'play' });
    for (const s of fast) {
      await post(`/replays/${s.view.id}`, { action: 'speed', speed: 'max' });
      await post(`/replays/${s.view.id}`, { action: 'play' });
    }
    await waitUntil('the slow session publishing', () => readers[0]!.ticks.length > 5, 20_000);
    await post(`/replays/${slow!.view.id}`, { action: 'pause' });
    await waitState(slow!.view.id, 'paused');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const paused = readers[0]!.ticks.length;
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(readers[0]!.ticks.length).toBe(paused);
    // Seek: the next trade is the first at or after T.
    const seekTo = slow!.from + 4 * MINUTE_MS + 500;
    await post(`/replays/${slow!.view.id}`, { action: 'seek', to: iso(seekTo) });
    await post(`/replays/${slow!.view.id}`, { action: 'speed', speed: 'max' });
    await post(`/replays/${slow!.view.id}`, { action: 'play' });
    await waitState(slow!.view.id, 'ended');
    const afterSeek = readers[0]!.ticks.slice(paused);
    expect(afterSeek[0]!.ts).toBe(storedIn(slow!.symbols, seekTo, slow!.to)[0]!.ts);

    for (const [i, s] of fast.entries()) {
      const ended = await waitState(s.view.id, 'ended');
      const expected = storedIn(s.symbols, s.from, s.to);
      expect(ended.messages).toBe(expected.length);
      await readers[i + 1]!.waitFor(expected.length);
      expect(readers[i + 1]!.ticks.map((t) => `${t.symbol}/${t.id}`)).toEqual(
        expected.map((t) => `${t.symbol}/${t.id}`),
      );
    }
    await Promise.all(readers.map((r) => r.stop()));
  });

  it('a killed simulator: its session says so; idle sessions and orphaned topics are removed', async () => {
    const view = await create(['BTC-USD'], START, START + HOURS * 60 * MINUTE_MS);
    await post(`/replays/${view.id}`, { action: 'play' });
    await waitState(view.id, 'playing');
    await simulator.kill('SIGKILL');
    const lost = await waitState(view.id, 'failed', 15_000);
    expect(lost.error).toMatch(/simulator stopped reporting/);
    expect((await post(`/replays/${view.id}`, { action: 'play' })).status).toBe(409);

    simulator = await startSimulator();
    // Until the new process has the commands partitions (the group waits out the killed
    // member's session), creating answers 503 with the reason: a user tries again.
    let idle: View | undefined;
    await waitUntil(
      'a session created on the restarted simulator',
      async () => {
        const res = await post('/replays', {
          symbols: ['ETH-USD'],
          from: iso(START),
          to: iso(START + HOURS * 60 * MINUTE_MS),
        });
        if (res.status === 201) idle = res.body;
        else expect(res.status, JSON.stringify(res.body)).toBe(503);
        return idle !== undefined;
      },
      60_000,
    );
    const idleView = idle;
    if (!idleView) throw new Error('unreachable');
    // A session nobody watches or touches ends as idle, and then goes with its topic.
    await post(`/replays/${idleView.id}`, { action: 'play' });
    const ended = await waitState(idleView.id, 'ended', IDLE_MS * 4);
    expect(ended.reason).toBe('idle');
    await waitUntil(
      'the idle session and the killed one topics deleted',
      async () => {
        const topics = await listTopics(infra.kafka);
        return !topics.includes(idleView.topic) && !topics.includes(view.topic);
      },
      IDLE_MS * 4,
    );

    // A watched session is touched: it outlives the idle timeout.
    const watched = await create(['BTC-USD'], START, START + HOURS * 60 * MINUTE_MS);
    const client = await StreamClient.open(base);
    client.send({ type: 'subscribe', session: watched.id, symbol: 'BTC-USD', interval: '1m' });
    await post(`/replays/${watched.id}`, { action: 'play' });
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS * 2));
    const outlived = await get(watched.id);
    expect(outlived.state, JSON.stringify(outlived)).toBe('playing');

    // A stopped simulator reports its running sessions as stopped with it.
    await simulator.kill('SIGTERM');
    const stopped = await waitState(watched.id, 'failed', 15_000);
    expect(stopped.error).toMatch(/the simulator stopped while this session was playing/);
    client.close();
  });
});
