/**
 * The live pipeline end to end: the producer and the fixed consumer as their own processes (as
 * `pnpm start` runs them) against the embedded broker, PostgreSQL and Redis. 100,000 synthetic
 * trades go in; the candles in `ohlcv_*`, the `bar-updates` stream and the live cache must equal
 * the core aggregator over the same trades, also when the consumer is killed and the broker
 * restarts mid-stream.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import { createRedis, RedisLiveBarStore } from '@candlestream/cache';
import type { Bar, BarUpdate, Interval, MarketSymbol, Tick } from '@candlestream/core';
import {
  aggregateTicks,
  decodeBarUpdate,
  diffBars,
  floorBucket,
  HOUR_MS,
  DAY_MS,
} from '@candlestream/core';
import { migrate } from '@candlestream/db';
import type { ConsumedMessage } from '@candlestream/kafka';
import {
  BatchConsumer,
  createKafka,
  DLQ_HEADERS,
  ensureTopics,
  KafkaPublisher,
  TOPICS,
} from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { createSyntheticSource } from '@candlestream/producer';
import type { ServiceProcess, TestDatabase } from '@candlestream/testkit';
import {
  createTestDatabase,
  needServices,
  spawnService,
  uniqueName,
  waitUntil,
} from '@candlestream/testkit';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';

const services = needServices(['postgres', 'redis']);

const CONSUMER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const PRODUCER_MAIN = fileURLToPath(new URL('../../producer/src/main.ts', import.meta.url));
const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD'] as MarketSymbol[];
const TOTAL_TRADES = 100_000;
const SEED = 20_261_121;
/** Event-time rate: 100k trades span ~14 hours, so every interval up to 1d has closed bars. */
const EVENT_RATE_PER_S = 2;
/** The consumer's default LIVE_LATENESS_MS: a minute closes on a trade this long past its end. */
const LATENESS_MS = 2_000;

/**
 * The first start from `startMs` on, an hour at a time, whose trades close every minute but the
 * last by trades alone: history is not live, so no clock closes its last minutes, and a run whose
 * last trade of a symbol lands in the first LATENESS_MS of its minute never sees the minute
 * before final. The synthetic market is a function of absolute time, so without this search the
 * test failed or passed by the hour it ran in.
 */
async function closingStart(startMs: number): Promise<number> {
  for (let start = startMs; ; start += HOUR_MS) {
    const last = new Map<string, number>();
    for (const t of await oracleTrades(start))
      last.set(t.symbol, Math.max(t.ts, last.get(t.symbol) ?? 0));
    if ([...last.values()].every((ts) => ts - floorBucket(ts, '1m') >= LATENESS_MS)) return start;
  }
}

/** About two days ago, off any round hour. */
const RECENT_START_MS = await closingStart(
  floorBucket(Date.now() - 2 * DAY_MS, '1h') + 17 * 60_000 + 123,
);
/**
 * Older than TimescaleDB's former 180-day raw-trade retention and any restore window: imported
 * or replayed history, which a restart once restored nothing of.
 */
const OLD_START_MS = await closingStart(RECENT_START_MS - 200 * DAY_MS);
const DB_INTERVALS: Interval[] = ['1m', '5m', '15m', '1h', '4h', '1d'];
const ALL_INTERVALS: Interval[] = ['1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w'];
/**
 * Higher volumes are exact sums of minute volumes (live) or SQL float sums (database); 1m
 * volumes, and any bar announced twice, must agree to the bit.
 */
const VOLUME_REL_TOL = 1e-9;

async function oracleTrades(startMs: number): Promise<Tick[]> {
  const source = createSyntheticSource({
    symbols: SYMBOLS,
    seed: SEED,
    tradesPerSecond: EVENT_RATE_PER_S,
    startTs: startMs,
    limit: TOTAL_TRADES,
  });
  const trades: Tick[] = [];
  for await (const t of source.trades({ signal: new AbortController().signal })) trades.push(t);
  return trades;
}

interface Fixture {
  broker: RunningBroker;
  brokerPort: number;
  dataDir: string;
  db: TestDatabase;
  pool: pg.Pool;
  cachePrefix: string;
  updates: BarUpdate[];
  dead: ConsumedMessage[];
  collector: BatchConsumer;
  processes: ServiceProcess[];
}

let fixture: Fixture | undefined;

async function setUp(): Promise<Fixture> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cs-pipeline-'));
  const broker = await startBroker({ port: 0, dataDir });
  const db = await createTestDatabase(services.get('postgres').url, 'pipeline');
  await migrate({ url: db.url }, { logger: silentLogger() });
  const kafka = createKafka({
    brokers: broker.brokers.split(','),
    clientId: 'test',
    logger: silentLogger(),
  });
  await ensureTopics(kafka, [TOPICS.ticks, TOPICS.ticksDlq, TOPICS.barUpdates]);
  const updates: BarUpdate[] = [];
  const dead: ConsumedMessage[] = [];
  const groupId = uniqueName('collector');
  // A listener like any other: when the broker restarts it crashes, and comes back where it was.
  const startCollector = async (): Promise<BatchConsumer> => {
    const consumer = new BatchConsumer(kafka, {
      groupId,
      topics: [TOPICS.barUpdates.name, TOPICS.ticksDlq.name],
      onCrash: () => {
        setTimeout(() => {
          if (fixture?.collector !== consumer) return;
          startCollector().then(
            (next) => fixture && (fixture.collector = next),
            () => undefined,
          );
        }, 500);
      },
    });
    await consumer.start((batch) => {
      for (const m of batch.messages) {
        if (m.topic === TOPICS.ticksDlq.name) {
          dead.push(m);
          continue;
        }
        const decoded = decodeBarUpdate(m.value ?? '');
        if (!decoded.ok) throw new Error(`bar-updates carries a bad message: ${decoded.reason}`);
        updates.push(decoded.value);
      }
      return Promise.resolve();
    });
    return consumer;
  };
  const collector = await startCollector();
  fixture = {
    broker,
    brokerPort: broker.port,
    dataDir,
    db,
    pool: new pg.Pool({ connectionString: db.url, max: 2 }),
    cachePrefix: `${uniqueName('cs')}:`,
    updates,
    dead,
    collector,
    processes: [],
  };
  return fixture;
}

afterEach(async () => {
  if (!fixture) return;
  const f = fixture;
  fixture = undefined;
  await Promise.all(f.processes.map((p) => p.kill('SIGKILL')));
  await f.collector.stop().catch(() => undefined);
  await f.pool.end();
  await f.broker.stop();
  await f.db.drop();
  await rm(f.dataDir, { recursive: true, force: true });
});

function env(f: Fixture): Record<string, string> {
  return {
    KAFKA_BROKERS: `127.0.0.1:${f.brokerPort}`,
    HEALTH_PORT: '0',
    LOG_LEVEL: 'info',
  };
}

function startConsumer(f: Fixture): ServiceProcess {
  const p = spawnService(CONSUMER_MAIN, {
    ...env(f),
    DATABASE_URL: f.db.url,
    REDIS_URL: services.get('redis').url,
    CACHE_PREFIX: f.cachePrefix,
  });
  f.processes.push(p);
  return p;
}

function startProducer(f: Fixture, startMs: number, maxRate?: number): ServiceProcess {
  const p = spawnService(PRODUCER_MAIN, {
    ...env(f),
    PRODUCER_SOURCE: 'synthetic',
    SYMBOLS: SYMBOLS.join(','),
    SYNTHETIC_SEED: String(SEED),
    SYNTHETIC_RATE: String(EVENT_RATE_PER_S),
    SYNTHETIC_START: new Date(startMs).toISOString(),
    SYNTHETIC_LIMIT: String(TOTAL_TRADES),
    ...(maxRate ? { PRODUCER_MAX_RATE: String(maxRate) } : {}),
  });
  f.processes.push(p);
  return p;
}

async function storedTrades(f: Fixture): Promise<number> {
  const { rows } = await f.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM ticks');
  return rows[0]!.n;
}

async function storedBars(f: Fixture, symbol: MarketSymbol, interval: Interval): Promise<Bar[]> {
  const { rows } = await f.pool.query<{
    t: number;
    open: number;
    high: number;
    low: number;
    close: number;
    volume: number;
  }>(
    `SELECT (extract(epoch FROM bucket) * 1000)::float8 AS t, open, high, low, close, volume
     FROM ohlcv_${interval} WHERE symbol = $1 ORDER BY bucket`,
    [symbol],
  );
  return rows.map((r) => ({
    time: r.t,
    open: r.open,
    high: r.high,
    low: r.low,
    close: r.close,
    volume: r.volume,
  }));
}

/**
 * What a listener of bar-updates ends up with per (symbol, interval): each closed bar (a bar
 * announced final more than once must be the same bar every time) and the newest forming bar.
 */
function replayUpdates(
  updates: readonly BarUpdate[],
): Map<string, { finals: Map<number, Bar>; forming: Bar | undefined; conflicts: string[] }> {
  const out = new Map<
    string,
    { finals: Map<number, Bar>; forming: Bar | undefined; conflicts: string[] }
  >();
  for (const u of updates) {
    const key = `${u.symbol} ${u.interval}`;
    let series = out.get(key);
    if (!series) out.set(key, (series = { finals: new Map(), forming: undefined, conflicts: [] }));
    if (u.final) {
      const seen = series.finals.get(u.bar.time);
      // Announced again after a restart, a bar is the same bar to the bit: stored minute
      // volumes are the exact sums the live candles had.
      const differences = seen ? diffBars([seen], [u.bar]) : [];
      for (const d of differences)
        series.conflicts.push(`${key} final twice, differently: ${d.message}`);
      series.finals.set(u.bar.time, u.bar);
      if (series.forming && series.forming.time <= u.bar.time) series.forming = undefined;
    } else if (!series.forming || u.bar.time >= series.forming.time) {
      series.forming = u.bar;
    }
  }
  return out;
}

/** Differences between the stream and the oracle; empty when every closed and forming bar matches. */
function streamProblems(
  updates: readonly BarUpdate[],
  oracle: Map<Interval, Map<MarketSymbol, Bar[]>>,
): string[] {
  const replayed = replayUpdates(updates);
  const problems: string[] = [];
  for (const interval of ALL_INTERVALS) {
    for (const symbol of SYMBOLS) {
      const want = oracle.get(interval)!.get(symbol)!;
      const series = replayed.get(`${symbol} ${interval}`);
      if (!series) {
        problems.push(`${symbol} ${interval}: no updates`);
        continue;
      }
      problems.push(...series.conflicts);
      const finals = [...series.finals.values()].sort((a, b) => a.time - b.time);
      for (const d of diffBars(want.slice(0, -1), finals, { volumeRelTol: VOLUME_REL_TOL })) {
        problems.push(`${symbol} ${interval} final: ${d.message}`);
      }
      const last = want[want.length - 1]!;
      const forming = series.forming ? [series.forming] : [];
      for (const d of diffBars([last], forming, { volumeRelTol: VOLUME_REL_TOL })) {
        problems.push(`${symbol} ${interval} forming: ${d.message}`);
      }
    }
  }
  return problems;
}

async function expectEverythingMatches(f: Fixture, trades: readonly Tick[]): Promise<void> {
  const oracle = new Map(ALL_INTERVALS.map((i) => [i, aggregateTicks(trades, i)]));
  await waitUntil('all trades stored', async () => (await storedTrades(f)) >= TOTAL_TRADES);
  // The last batch's updates are published before its write, so they are on their way already.
  await waitUntil(
    'the stream to settle on the oracle',
    () => streamProblems(f.updates, oracle).length === 0,
    30_000,
  ).catch(() => undefined);
  expect(streamProblems(f.updates, oracle).slice(0, 20)).toEqual([]);
  expect(await storedTrades(f)).toBe(TOTAL_TRADES);
  for (const interval of DB_INTERVALS) {
    for (const symbol of SYMBOLS) {
      const diffs = diffBars(
        oracle.get(interval)!.get(symbol)!,
        await storedBars(f, symbol, interval),
        interval === '1m' ? {} : { volumeRelTol: VOLUME_REL_TOL },
      );
      expect(diffs.slice(0, 5), `ohlcv_${interval} ${symbol}`).toEqual([]);
    }
  }
  const store = new RedisLiveBarStore(
    createRedis(services.get('redis').url, silentLogger()),
    f.cachePrefix,
  );
  try {
    for (const interval of ['1m', '1h', '1w'] as Interval[]) {
      for (const symbol of SYMBOLS) {
        const want = oracle.get(interval)!.get(symbol)!;
        const cached = await store.get(symbol, interval);
        expect(cached?.final, `${symbol} ${interval} cached`).toBe(false);
        expect(
          diffBars([want[want.length - 1]!], cached ? [cached.bar] : [], {
            volumeRelTol: VOLUME_REL_TOL,
          }),
        ).toEqual([]);
      }
    }
  } finally {
    await store.close();
  }
}

describe.skipIf(services.skip)('live pipeline: producer → tick-data → fixed consumer', () => {
  it(`turns ${TOTAL_TRADES} trades into the oracle's candles, and dead-letters poison without stalling`, async () => {
    const [trades, f] = await Promise.all([oracleTrades(RECENT_START_MS), setUp()]);
    expect(trades).toHaveLength(TOTAL_TRADES);
    expect(new Set(trades.map((t) => t.symbol))).toEqual(new Set(SYMBOLS));
    expect(trades[trades.length - 1]!.ts - trades[0]!.ts).toBeGreaterThan(12 * HOUR_MS);

    const consumer = startConsumer(f);
    await consumer.waitForLine((l) => l['msg'] === 'state' && l['to'] === 'consuming.healthy');
    const producer = startProducer(f, RECENT_START_MS, 25_000);

    // Poison, injected mid-stream beside the producer's trades, keyed like real ones.
    const poisonKafka = createKafka({
      brokers: [`127.0.0.1:${f.brokerPort}`],
      clientId: 'poison',
      logger: silentLogger(),
    });
    const poison = new KafkaPublisher(poisonKafka);
    await poison.connect();
    const valid = {
      v: 1,
      symbol: 'BTC-USD',
      ts: RECENT_START_MS + 1,
      price: 1,
      size: 1,
      side: 'buy',
      id: 'p',
      source: 'file',
    };
    const poisonValues: [string, RegExp][] = [
      ['{"v":1,"symbol":"BTC-USD",', /JSON/i],
      [JSON.stringify({ v: 1, symbol: 'BTC-USD' }), /required/],
      [JSON.stringify({ ...valid, price: -5 }), /price.*positive/],
      [JSON.stringify({ ...valid, v: 2 }), /version 2/],
    ];
    await waitUntil('the stream to be under way', async () => (await storedTrades(f)) > 10_000);
    await poison.send(
      TOPICS.ticks.name,
      poisonValues.map(([value]) => ({ key: 'BTC-USD', value })),
    );
    await poison.disconnect();

    expect(await producer.exited).toBe(0);
    await expectEverythingMatches(f, trades);
    await waitUntil('the poison in the DLQ', () => f.dead.length >= poisonValues.length, 20_000);
    expect(f.dead).toHaveLength(poisonValues.length);
    for (const [i, [value, reason]] of poisonValues.entries()) {
      const letter = f.dead[i]!;
      expect(letter.value?.toString()).toBe(value);
      expect(letter.key?.toString()).toBe('BTC-USD');
      expect(letter.headers[DLQ_HEADERS.reason]).toMatch(reason);
      expect(letter.headers[DLQ_HEADERS.topic]).toBe(TOPICS.ticks.name);
    }
    expect(consumer.lines.filter((l) => l['level'] === 'error')).toEqual([]);

    // The contract's ops endpoints, on the port the service logged.
    const ops = await consumer.waitForLine((l) => l['msg'] === 'ops endpoints listening');
    const base = `http://127.0.0.1:${String(ops['port'])}`;
    const health = (await (await fetch(`${base}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({
      status: 'ok',
      service: 'fixed-consumer',
      state: 'consuming.healthy',
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain(`candlestream_fixed_consumer_trades_stored_total ${TOTAL_TRADES}`);
    expect(metrics).toContain(
      `candlestream_fixed_consumer_messages_dead_lettered_total ${poisonValues.length}`,
    );
  });

  it.each([
    { age: 'from two days ago', startMs: RECENT_START_MS },
    { age: 'from 200 days ago (regression: a restart restored none of it)', startMs: OLD_START_MS },
  ])(
    'loses and double-counts nothing when the consumer is killed and the broker restarts mid-stream, trades $age',
    async ({ startMs }) => {
      const [trades, f] = await Promise.all([oracleTrades(startMs), setUp()]);
      let consumer = startConsumer(f);
      await consumer.waitForLine((l) => l['msg'] === 'state' && l['to'] === 'consuming.healthy');
      const producer = startProducer(f, startMs, 8_000);

      // The broker goes away while both services are mid-stream; they must ride it out.
      await waitUntil('a fifth stored', async () => (await storedTrades(f)) > TOTAL_TRADES / 5);
      await f.broker.stop();
      // Longer than kafkajs' own retries, so the services' backoff and health paths run.
      await new Promise((r) => setTimeout(r, 4_000));
      f.broker = await startBroker({ port: f.brokerPort, dataDir: f.dataDir });
      expect(producer.child.exitCode).toBeNull();
      await producer.waitForLine((l) => l['msg'] === 'publish failed; retrying');
      await producer.waitForLine((l) => l['msg'] === 'broker accepting trades again');

      // SIGKILL: no clean shutdown, uncommitted batches and all.
      await waitUntil('half stored', async () => (await storedTrades(f)) > TOTAL_TRADES / 2);
      expect(await consumer.kill('SIGKILL')).toBe('SIGKILL');
      consumer = startConsumer(f);
      await consumer.waitForLine((l) => l['msg'] === 'live candles restored');

      expect(await producer.exited).toBe(0);
      await expectEverythingMatches(f, trades);
      expect(f.dead).toEqual([]);
    },
  );
});
