/**
 * History on demand with every service as its own process, from an empty database: the broker,
 * the fixed consumer, the coordinator, the dynamic consumer, the producer (synthetic, live) and
 * the datastore. Requests go through the API as a user's would; the stored bars are compared
 * with the synthetic source's own candles for the same (seed, symbol, range), which is what a
 * backfill of it must store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type { Bar, MarketSymbol } from '@candlestream/core';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '@candlestream/core';
import { migrate, Repository } from '@candlestream/db';
import { createKafka } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { syntheticCandles } from '@candlestream/producer';
import type { ServiceProcess, TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, spawnService, waitUntil } from '@candlestream/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const services = needServices(['postgres']);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const main = (service: string): string => join(ROOT, 'services', service, 'src', 'main.ts');
const logger = silentLogger();
const BTC = 'BTC-USD' as MarketSymbol;
const SYMBOLS = [BTC, 'ETH-USD' as MarketSymbol];
const SEED = 7;
const RATE = 2;
const MODEL = { symbols: SYMBOLS, seed: SEED, tradesPerSecond: RATE };
const JOB_WITHIN_MS = 120_000;

interface JobView {
  id: string;
  status: string;
  progress: { done: number; total: number };
  error: string | null;
}

/** One hour bar per hour from 1-minute bars, as storage rolls them up. */
function hourly(minutes: readonly Bar[]): Bar[] {
  const out = new Map<number, Bar>();
  for (const b of minutes) {
    const hour = Math.floor(b.time / HOUR_MS) * HOUR_MS;
    const h = out.get(hour);
    if (!h) out.set(hour, { ...b, time: hour });
    else {
      h.high = Math.max(h.high, b.high);
      h.low = Math.min(h.low, b.low);
      h.close = b.close;
      h.volume += b.volume;
    }
  }
  return [...out.values()];
}

function expectSameBars(stored: readonly Bar[], expected: readonly Bar[]): void {
  expect(stored.map((b) => b.time)).toEqual(expected.map((b) => b.time));
  for (const [i, b] of stored.entries()) {
    const e = expected[i]!;
    expect([b.open, b.high, b.low, b.close], new Date(b.time).toISOString()).toEqual([
      e.open,
      e.high,
      e.low,
      e.close,
    ]);
    expect(b.volume).toBeCloseTo(e.volume, 6);
  }
}

describe.skipIf(services.skip)('backfills across the platform (every service a process)', () => {
  let broker: RunningBroker;
  let dataDir: string;
  let db: TestDatabase;
  let repository: Repository;
  let url: string;
  const processes = new Map<string, ServiceProcess>();
  let env: Record<string, string>;
  /** When the live producer started: minutes before it can only come from backfills. */
  let liveSince: number;

  function start(service: string, extra: Record<string, string> = {}): ServiceProcess {
    const p = spawnService(main(service), { ...env, ...extra });
    processes.set(service, p);
    return p;
  }
  const healthy = (p: ServiceProcess) =>
    p.waitForLine((l) => typeof l['to'] === 'string' && /healthy|live/.test(l['to']), 60_000);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cs-backfill-'));
    broker = await startBroker({ port: 0, dataDir });
    db = await createTestDatabase(services.get('postgres').url, 'backfill_e2e');
    await migrate({ url: db.url }, { logger });
    repository = new Repository({ url: db.url, logger });
    env = {
      KAFKA_BROKERS: broker.brokers,
      DATABASE_URL: db.url,
      SYMBOLS: SYMBOLS.join(','),
      HEALTH_PORT: '0',
      PORT: '0',
      SYNTHETIC_SEED: String(SEED),
      SYNTHETIC_RATE: String(RATE),
      BACKFILL_TOPIC_TTL_MS: '2000',
      // The test polls jobs several times a second; the API's per-client limit is not under test.
      RATE_LIMIT_PER_MINUTE: '1000000',
      LOG_LEVEL: 'info',
    };
    await healthy(start('fixed-consumer'));
    await healthy(start('dynamic-consumer'));
    await healthy(start('coordinator'));
    liveSince = Date.now();
    start('producer');
    const datastore = start('datastore');
    const listening = await datastore.waitForLine((l) => l['msg'] === 'listening', 60_000);
    url = `http://127.0.0.1:${String(listening['port'])}`;
  }, 120_000);

  // A failure says which process ended and why: the test only sees the API's side.
  afterEach((context) => {
    if (context.task.result?.state !== 'fail') return;
    for (const [name, p] of processes) {
      const tail = p.lines
        .slice(-8)
        .map((l) => JSON.stringify(l))
        .join('\n');
      process.stderr.write(
        `--- ${name} (exit ${String(p.child.exitCode)})\n${p.stderr().slice(-2_000)}\n${tail}\n`,
      );
    }
  });

  afterAll(async () => {
    for (const p of processes.values()) await p.kill();
    await repository?.close();
    await broker?.stop();
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /**
   * fetch, once more on a pooled socket the server closed while this process was busy computing
   * an oracle (undici reuses it and reports "other side closed"): the client's artefact, not the API's.
   */
  async function api(path: string, init?: RequestInit): Promise<Response> {
    try {
      return await fetch(`${url}${path}`, init);
    } catch (err) {
      if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
      return fetch(`${url}${path}`, init);
    }
  }

  async function submit(symbol: string, from: number, to: number): Promise<JobView> {
    const response = await api(`/backfills`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        symbol,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
      }),
    });
    expect(response.status, await response.clone().text()).toBe(202);
    return (await response.json()) as JobView;
  }
  async function job(id: string): Promise<JobView> {
    const response = await api(`/backfills/${id}`);
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as JobView;
  }
  async function topics(): Promise<string[]> {
    const admin = createKafka({ brokers: [broker.brokers], clientId: 'test', logger }).admin();
    await admin.connect();
    try {
      return await admin.listTopics();
    } finally {
      await admin.disconnect();
    }
  }

  it('30 days of 1h and 2 days of 1m complete through the coordinator: the source’s candles, the topic gone after, no gap or duplicate at the seam with live trades', async () => {
    const now = Date.now();
    const twoDaysFrom = Math.floor((now - 2 * DAY_MS) / MINUTE_MS) * MINUTE_MS;
    const monthFrom = Math.floor((now - 30 * DAY_MS) / HOUR_MS) * HOUR_MS;
    const minutes = await submit(BTC, twoDaysFrom, now);
    const hours = await submit(BTC, monthFrom, twoDaysFrom);
    const seen = new Set<string>();
    await waitUntil(
      'both jobs done',
      async () => {
        for (const t of await topics()) if (t.startsWith('backfill.BTC-USD.')) seen.add(t);
        const [a, b] = await Promise.all([job(minutes.id), job(hours.id)]);
        if (a.status === 'failed' || b.status === 'failed') throw new Error(JSON.stringify([a, b]));
        return a.status === 'done' && b.status === 'done';
      },
      JOB_WITHIN_MS,
    );
    // Each job's topic existed while it ran, and is gone once its TTL passed.
    expect(seen).toEqual(
      new Set([`backfill.BTC-USD.${minutes.id}`, `backfill.BTC-USD.${hours.id}`]),
    );
    await waitUntil(
      'job topics deleted',
      async () => !(await topics()).some((t) => t.startsWith('backfill.')),
      30_000,
    );

    // The month as 1h bars through the API (asked before the oracles below, which keep this
    // process busy: the embedded broker runs in it), compared with them further down.
    const answer = (await (
      await api(
        `/ohlcv?symbol=BTC-USD&interval=1h&startDate=${new Date(monthFrom).toISOString()}&endDate=${new Date(twoDaysFrom - (twoDaysFrom % HOUR_MS)).toISOString()}`,
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
    // Before the live producer started, every minute is the source's candle.
    const liveMinute = Math.floor(liveSince / MINUTE_MS) * MINUTE_MS;
    const stored = await repository.readBars(BTC, '1m', monthFrom, now);
    const before = stored.filter((b) => b.time < liveMinute);
    expectSameBars(before, syntheticCandles(MODEL, BTC, { from: monthFrom, to: liveMinute }));
    // The seam: every minute from the first backfilled one to the last closed one, once each.
    const closed = stored.filter(
      (b) => b.time < Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - MINUTE_MS,
    );
    const times = closed.map((b) => b.time);
    expect(new Set(times).size).toBe(times.length);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(MINUTE_MS);
    // After the seam the live minutes are the same path's trades (the first may be partial).
    const after = closed.filter((b) => b.time > liveMinute);
    expectSameBars(
      after,
      syntheticCandles(MODEL, BTC, {
        from: liveMinute + MINUTE_MS,
        to: (after.at(-1)?.time ?? liveMinute) + MINUTE_MS,
      }),
    );

    const apiBars = answer.bars.map((b) => ({ ...b, time: Date.parse(b.time) }));
    expectSameBars(
      apiBars,
      hourly(
        syntheticCandles(MODEL, BTC, {
          from: monthFrom,
          to: twoDaysFrom - (twoDaysFrom % HOUR_MS),
        }),
      ),
    );
    expect(apiBars.length).toBeGreaterThan(27 * 24);
  }, 240_000);

  it('the coordinator, the producer and the dynamic consumer each SIGKILLed once mid-job: the job completes, nothing lost or stored twice', async () => {
    const ETH = 'ETH-USD' as MarketSymbol;
    const to = Math.floor((liveSince - 5 * DAY_MS) / MINUTE_MS) * MINUTE_MS;
    const from = to - 60 * DAY_MS;
    const submitted = await submit(ETH, from, to);
    const progressed = async (status: 'fetching' | 'storing', done: number): Promise<void> =>
      waitUntil(
        `${status} past ${done}`,
        async () => {
          const view = await job(submitted.id);
          if (view.status === 'failed' || view.status === 'done')
            throw new Error(`ended early: ${JSON.stringify(view)}`);
          // Storing starts while fetching goes on, so "fetching" is any status up to storing.
          const reached = status === 'fetching' ? ['fetching', 'storing'] : ['storing'];
          return reached.includes(view.status) && view.progress.done >= done;
        },
        JOB_WITHIN_MS,
      );
    const restart = async (service: string): Promise<void> => {
      await processes.get(service)!.kill('SIGKILL');
      const p = start(service);
      if (service !== 'producer') await healthy(p);
    };
    await progressed('fetching', 1);
    await restart('producer');
    await progressed('storing', 10_000);
    await restart('dynamic-consumer');
    await restart('coordinator');
    await waitUntil(
      'job done after the kills',
      async () => {
        const view = await job(submitted.id);
        if (view.status === 'failed') throw new Error(JSON.stringify(view));
        return view.status === 'done';
      },
      JOB_WITHIN_MS,
    );
    expect((await job(submitted.id)).progress).toEqual({ done: 86_400, total: 86_400 });
    expectSameBars(
      await repository.readBars(ETH, '1m', from, to),
      syntheticCandles(MODEL, ETH, { from, to }),
    );
  }, 300_000);
});
