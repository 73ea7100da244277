/**
 * The datastore against real PostgreSQL, Redis and the embedded broker, with data written by the
 * real pipeline (the fixed consumer, in this process, fed through tick-data): /ohlcv and the UDF
 * protocol against the core aggregator, TradingView's own data checks, the stream's seam with
 * history, and bad input of every kind.
 */
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type { Bar, EpochMs, Interval, MarketSymbol, Tick } from '@candlestream/core';
import {
  aggregateTicks,
  diffBars,
  encodeTick,
  floorBucket,
  HOUR_MS,
  INTERVAL_MS,
  MINUTE_MS,
  toIso,
} from '@candlestream/core';
import { migrate } from '@candlestream/db';
import {
  loadFixedConsumerConfig,
  startFixedConsumer,
  type FixedConsumer,
} from '@candlestream/fixed-consumer';
import { createKafka, ensureTopics, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { createSyntheticSource } from '@candlestream/producer';
import type { TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, uniqueName, waitUntil } from '@candlestream/testkit';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadDatastoreConfig } from './config.js';
import type { Datastore } from './service.js';
import { startDatastore } from './service.js';

const services = needServices(['postgres', 'redis']);
const logger = silentLogger();
const SYMBOLS = ['BTC-USD', 'ETH-USD'] as MarketSymbol[];
const SPAN_MS = 26 * HOUR_MS;
const TRADES = 40_000;
const VOLUME_REL_TOL = 1e-9;
/** The int tier's test timeout: a wait never outlasts its test. */
const WAIT_MS = 60_000;
const SECRET = 'a-test-secret-that-is-at-least-32-characters';

interface Json {
  [key: string]: unknown;
}

function toBars(body: Json): Bar[] {
  return (
    body['bars'] as {
      time: string;
      open: number;
      high: number;
      low: number;
      close: number;
      volume: number;
    }[]
  ).map((b) => ({ ...b, time: Date.parse(b.time) }));
}

function udfBars(body: Json): Bar[] {
  const t = body['t'] as number[];
  const at = (k: string, i: number): number => (body[k] as number[])[i]!;
  return t.map((s, i) => ({
    time: s * 1_000,
    open: at('o', i),
    high: at('h', i),
    low: at('l', i),
    close: at('c', i),
    volume: at('v', i),
  }));
}

describe.skipIf(services.skip)(
  'datastore (PostgreSQL, Redis, embedded broker, real pipeline)',
  () => {
    let broker: RunningBroker;
    let db: TestDatabase;
    let consumer: FixedConsumer;
    let datastore: Datastore;
    let base: string;
    let publisher: KafkaPublisher;
    let trades: Tick[];
    let start: EpochMs;
    const env: Record<string, string> = {};

    async function get(
      path: string,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: Json; headers: Headers }> {
      const response = await fetch(`${base}${path}`, { headers });
      const text = await response.text();
      let body: Json;
      try {
        body = JSON.parse(text) as Json;
      } catch {
        body = { text };
      }
      return { status: response.status, body, headers: response.headers };
    }

    beforeAll(async () => {
      broker = await startBroker({ port: 0 });
      db = await createTestDatabase(services.get('postgres').url, 'datastore');
      await migrate({ url: db.url }, { logger });
      Object.assign(env, {
        KAFKA_BROKERS: broker.brokers,
        DATABASE_URL: db.url,
        REDIS_URL: services.get('redis').url,
        CACHE_PREFIX: `${uniqueName('ds')}:`,
        HEALTH_PORT: '0',
        PORT: '0',
        SYMBOLS: SYMBOLS.join(','),
      });
      const kafka = createKafka({ brokers: [broker.brokers], clientId: 'test', logger });
      await ensureTopics(kafka, [TOPICS.ticks, TOPICS.ticksDlq, TOPICS.barUpdates]);
      consumer = await startFixedConsumer(loadFixedConsumerConfig(env), logger);
      datastore = await startDatastore(loadDatastoreConfig(env), logger);
      base = `http://127.0.0.1:${datastore.port}`;
      await waitUntil(
        'both live',
        () => consumer.state() === 'consuming.healthy' && datastore.state() === 'live.healthy',
        WAIT_MS,
      );

      // History up to now, so the last bars are still forming.
      start = Date.now() - SPAN_MS;
      const source = createSyntheticSource({
        symbols: SYMBOLS,
        seed: 7,
        tradesPerSecond: TRADES / (SPAN_MS / 1_000),
        startTs: start,
        limit: TRADES,
      });
      trades = [];
      // The synthetic source draws trade times from the rate, so a fixed count may run past now:
      // history stops at now, as the live trades after it are the stream's.
      const now = Date.now();
      for await (const t of source.trades({ signal: new AbortController().signal })) {
        if (t.ts <= now) trades.push(t);
      }
      publisher = new KafkaPublisher(kafka);
      await publisher.connect();
      for (let i = 0; i < trades.length; i += 2_000) {
        await publisher.send(
          TOPICS.ticks.name,
          trades.slice(i, i + 2_000).map((t) => ({ key: t.symbol, value: encodeTick(t) })),
        );
      }
      await waitUntil(
        'all trades stored',
        async () =>
          (await consumer.metrics.render()).includes(`trades_stored_total ${trades.length}\n`),
        WAIT_MS,
      );
      await waitUntil(
        'the datastore to see the forming bars',
        async () => (await datastore.live.current(SYMBOLS[0]!, '1m')) !== undefined,
        WAIT_MS,
      );
    });

    afterAll(async () => {
      await publisher?.disconnect();
      await datastore?.stop();
      await consumer?.stop();
      await broker?.stop();
      await db?.drop();
    });

    it('/ohlcv equals the core aggregator at every interval, the last bar forming and marked partial', async () => {
      for (const interval of ['1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w'] as Interval[]) {
        for (const symbol of SYMBOLS) {
          const from = floorBucket(start, interval);
          const { status, body } = await get(
            `/ohlcv?symbol=${symbol}&interval=${interval}&startDate=${toIso(from)}`,
          );
          expect(status, `${symbol} ${interval}`).toBe(200);
          const oracle = aggregateTicks(trades, interval).get(symbol)!;
          expect(
            diffBars(oracle, toBars(body), { volumeRelTol: VOLUME_REL_TOL }).slice(0, 5),
            `${symbol} ${interval}`,
          ).toEqual([]);
          // The last bar's bucket has not ended (the data runs up to now) unless a minute just turned.
          const lastBar = toBars(body).at(-1)!;
          expect(body['partial']).toBe(lastBar.time + INTERVAL_MS[interval] > Date.now());
          if (interval === '1w') expect(body['partial']).toBe(true);
        }
      }
    });

    it('a closed range is immutable with a strong ETag (304 on revalidation) until a late trade changes it', async () => {
      const from = floorBucket(start, '1h') + 2 * HOUR_MS;
      const to = from + 6 * HOUR_MS;
      const path = `/ohlcv?symbol=BTC-USD&interval=1m&startDate=${toIso(from)}&endDate=${toIso(to)}`;
      const plain = await get(path, { 'accept-encoding': 'identity' });
      const zipped = await fetch(`${base}${path}`, { headers: { 'accept-encoding': 'gzip' } });
      expect(zipped.headers.get('content-encoding')).toBe('gzip');
      expect(JSON.parse(await zipped.text())).toEqual(plain.body);
      const tag = plain.headers.get('etag')!;
      expect(tag).toMatch(/^"[\w.-]+"$/);
      expect(zipped.headers.get('etag')).not.toBe(tag);
      expect(plain.headers.get('cache-control')).toMatch(/immutable/);
      const oracle = aggregateTicks(trades, '1m')
        .get(SYMBOLS[0]!)!
        .filter((b) => b.time >= from && b.time < to);
      expect(diffBars(oracle, toBars(plain.body), { volumeRelTol: VOLUME_REL_TOL })).toEqual([]);

      // As a browser revalidates (fetch() would add `no-cache`, which bypasses validators).
      const again = await fetch(`${base}${path}`, {
        headers: {
          'accept-encoding': 'identity',
          'if-none-match': tag,
          'cache-control': 'max-age=0',
        },
      });
      expect(again.status).toBe(304);
      expect(await again.text()).toBe('');
      // A range still forming is never immutable.
      const open = await get(`/ohlcv?symbol=BTC-USD&interval=1m&startDate=${toIso(from)}`);
      expect(open.headers.get('cache-control') ?? '').not.toMatch(/immutable/);

      // A late trade into the range: its final correction drops the prepared pages.
      const minute = from + 30 * MINUTE_MS;
      const late: Tick = {
        v: 1,
        symbol: SYMBOLS[0]!,
        ts: minute + 1_234,
        price: oracle.find((b) => b.time === minute)?.close ?? 37_000,
        size: 5,
        side: 'buy',
        id: uniqueName('late'),
        source: 'synthetic',
      };
      await publisher.send(TOPICS.ticks.name, [{ key: late.symbol, value: encodeTick(late) }]);
      const before = toBars(plain.body).find((b) => b.time === minute)?.volume ?? 0;
      let changed: Awaited<ReturnType<typeof get>> | undefined;
      await waitUntil(
        'the answer to include the late trade',
        async () => {
          changed = await get(path, { 'accept-encoding': 'identity' });
          const bar = toBars(changed.body).find((b) => b.time === minute);
          return bar !== undefined && Math.abs(bar.volume - (before + 5)) < 1e-6;
        },
        WAIT_MS,
      );
      expect(changed!.headers.get('etag')).not.toBe(tag);
      const stale = await fetch(`${base}${path}`, {
        headers: {
          'accept-encoding': 'identity',
          'if-none-match': tag,
          'cache-control': 'max-age=0',
        },
      });
      expect(stale.status).toBe(200);
      trades.push(late); // later tests compare against the aggregator of every trade
    });

    it('/udf/history equals /ohlcv; times strictly increase; the same request gives the same answer', async () => {
      const to = Math.floor(Date.now() / 1_000) + 60;
      const from = Math.floor(floorBucket(start, '15m') / 1_000);
      const a = await get(`/udf/history?symbol=BTC-USD&resolution=15&from=${from}&to=${to}`);
      expect(a.body['s']).toBe('ok');
      const bars = udfBars(a.body);
      expect(
        diffBars(aggregateTicks(trades, '15m').get(SYMBOLS[0]!)!, bars, {
          volumeRelTol: VOLUME_REL_TOL,
        }).map((d) => d.message),
      ).toEqual([]);
      const times = a.body['t'] as number[];
      expect(times.every((t, i) => i === 0 || t > times[i - 1]!)).toBe(true);
      const closedTo = Math.floor(floorBucket(Date.now() - HOUR_MS, '1h') / 1_000);
      const once = await get(
        `/udf/history?symbol=BTC-USD&resolution=60&from=${from}&to=${closedTo}`,
      );
      const twice = await get(
        `/udf/history?symbol=BTC-USD&resolution=60&from=${from}&to=${closedTo}`,
      );
      expect(twice.body).toEqual(once.body);
    });

    it('countback returns exactly that many bars before `to`, taking priority over `from`', async () => {
      const to = Math.floor(floorBucket(Date.now() - 3 * HOUR_MS, '5m') / 1_000);
      const { body } = await get(
        `/udf/history?symbol=ETH-USD&resolution=5&from=${to - 60}&to=${to}&countback=100`,
      );
      const bars = udfBars(body);
      expect(bars).toHaveLength(100);
      expect(bars[bars.length - 1]!.time).toBe(to * 1_000 - 5 * MINUTE_MS);
      const oracle = aggregateTicks(trades, '5m')
        .get('ETH-USD' as MarketSymbol)!
        .filter((b) => b.time < to * 1_000)
        .slice(-100);
      expect(diffBars(oracle, bars, { volumeRelTol: VOLUME_REL_TOL })).toEqual([]);
    });

    it('from == to and ranges before the data answer no_data, with nextTime when earlier data exists', async () => {
      const mid = Math.floor((start + SPAN_MS / 2) / 1_000);
      const same = await get(`/udf/history?symbol=BTC-USD&resolution=1&from=${mid}&to=${mid}`);
      expect(same.body['s']).toBe('no_data');
      const earlier = aggregateTicks(trades, '1m')
        .get('BTC-USD' as MarketSymbol)!
        .filter((b) => b.time < mid * 1_000);
      expect(same.body['nextTime']).toBe(earlier[earlier.length - 1]!.time / 1_000);
      const before = await get(
        `/udf/history?symbol=BTC-USD&resolution=1&from=1000000000&to=1000003600`,
      );
      expect(before.body).toEqual({ s: 'no_data' });
    });

    it('many short requests concatenated equal one long request', async () => {
      const from = floorBucket(start, '1h') + HOUR_MS;
      const to = from + 12 * HOUR_MS;
      const long = toBars(
        (
          await get(
            `/ohlcv?symbol=BTC-USD&interval=5m&startDate=${toIso(from)}&endDate=${toIso(to)}`,
          )
        ).body,
      );
      const pieces: Bar[] = [];
      for (let t = from; t < to; t += 47 * MINUTE_MS) {
        const end = Math.min(to, t + 47 * MINUTE_MS);
        pieces.push(
          ...toBars(
            (
              await get(
                `/ohlcv?symbol=BTC-USD&interval=5m&startDate=${toIso(t)}&endDate=${toIso(end)}`,
              )
            ).body,
          ),
        );
      }
      expect(pieces).toEqual(long);
      expect(long.length).toBe(12 * 12);
    });

    it('serves a closed day of 1m bars from the cache on the second request', async () => {
      // Starts at least a day ago, so its day-sized chunk has closed and may be cached.
      const from = floorBucket(start, '1h') + HOUR_MS;
      const url = `/ohlcv?symbol=ETH-USD&interval=1m&startDate=${toIso(from)}&endDate=${toIso(from + 6 * HOUR_MS)}`;
      const first = await get(url);
      const health1 = datastore.health().checks['cacheStats'] as { hits: number };
      const hitsBefore = health1.hits;
      const second = await get(url);
      expect(second.body).toEqual(first.body);
      expect((datastore.health().checks['cacheStats'] as { hits: number }).hits).toBeGreaterThan(
        hitsBefore,
      );
    });

    it('a late trade in a cached closed day shows at once: the correction drops the cached chunk', async () => {
      const from = floorBucket(start, '1h') + 2 * HOUR_MS;
      const url = `/ohlcv?symbol=ETH-USD&interval=1m&startDate=${toIso(from)}&endDate=${toIso(from + HOUR_MS)}`;
      await get(url);
      const cachedOnce = toBars((await get(url)).body);
      const minute = cachedOnce[10]!;
      const late: Tick = {
        v: 1,
        symbol: 'ETH-USD' as MarketSymbol,
        ts: minute.time + 30_000,
        price: minute.high + 1_000,
        size: 5,
        side: 'buy',
        id: 'late-correction',
        source: 'file',
      };
      await publisher.send(TOPICS.ticks.name, [{ key: late.symbol, value: encodeTick(late) }]);
      const want = aggregateTicks([...trades, late], '1m')
        .get(late.symbol)!
        .find((b) => b.time === minute.time)!;
      await waitUntil(
        'the corrected bar',
        async () => {
          const bar = toBars((await get(url)).body).find((b) => b.time === minute.time);
          return bar?.high === late.price;
        },
        WAIT_MS,
      );
      const corrected = toBars((await get(url)).body).find((b) => b.time === minute.time)!;
      expect(diffBars([want], [corrected], { volumeRelTol: VOLUME_REL_TOL })).toEqual([]);
      trades.push(late);
    });

    it('the stream continues exactly from the last history bar, and follows new trades', async () => {
      const history = toBars(
        (await get(`/ohlcv?symbol=BTC-USD&interval=1m&startDate=${toIso(Date.now() - HOUR_MS)}`))
          .body,
      );
      const lastHistory = history[history.length - 1]!;
      const ws = new WebSocket(`ws://127.0.0.1:${datastore.port}/stream`);
      const messages: Json[] = [];
      ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString()) as Json));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.send(JSON.stringify({ type: 'subscribe', symbol: 'BTC-USD', interval: '1m' }));
      await waitUntil('the current bar', () => messages.some((m) => m['type'] === 'bar'), 10_000);
      const first = messages.find((m) => m['type'] === 'bar')!;
      const firstBar = first['bar'] as { time: string; close: number };
      expect(Date.parse(firstBar.time)).toBe(lastHistory.time);
      expect(firstBar.close).toBe(lastHistory.close);

      const last = trades.filter((t) => t.symbol === 'BTC-USD').at(-1)!;
      const next: Tick = {
        ...last,
        ts: Math.max(last.ts + 1, Date.now()),
        price: 123_456,
        id: 'stream-probe',
      };
      await publisher.send(TOPICS.ticks.name, [{ key: next.symbol, value: encodeTick(next) }]);
      await waitUntil(
        'the update',
        () => messages.some((m) => (m['bar'] as { high?: number } | undefined)?.high === 123_456),
        10_000,
      );
      const times = messages
        .filter((m) => m['type'] === 'bar')
        .map((m) => Date.parse((m['bar'] as { time: string }).time));
      expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
      ws.close();
    });

    it('bad input gets a clear 4xx, never a 500', async () => {
      const cases: [string, number, RegExp][] = [
        ['/ohlcv?symbol=BTC-USD&startDate=yesterday', 400, /startDate.*ISO-8601/],
        ['/ohlcv?symbol=BTC-USD&startDate=2024-02-30T00:00:00Z', 400, /startDate/],
        [
          '/ohlcv?symbol=BTC-USD&startDate=2024-01-02T00:00:00Z&endDate=2024-01-01T00:00:00Z',
          400,
          /before endDate/,
        ],
        ['/ohlcv?symbol=BTC-USD&interval=7m&startDate=2024-01-01T00:00:00Z', 400, /interval/],
        // Wider than MAX_BARS minutes (a start before 2009-01-03 is itself refused now).
        ['/ohlcv?symbol=BTC-USD&startDate=2010-01-01T00:00:00Z', 400, /at most/],
        ['/ohlcv?symbol=NOPE-USD&startDate=2024-01-01T00:00:00Z', 404, /unknown symbol NOPE-USD/],
        ['/ohlcv?symbol=BTC-USD&symbol=ETH-USD&startDate=2024-01-01T00:00:00Z', 400, /symbol/],
        ['/ohlcv?startDate=2024-01-01T00:00:00Z', 400, /symbol.*required/],
        ['/ohlcv?symbol=BTC-USD&startDate=2024-01-01T00:00:00Z&limit=0', 400, /limit/],
      ];
      for (const [path, status, message] of cases) {
        const r = await get(path);
        expect(r.status, path).toBe(status);
        expect(String(r.body['error']), path).toMatch(message);
      }
      const udf: [string, number][] = [
        ['/udf/history?symbol=BTC-USD&resolution=7&from=1&to=2', 400],
        ['/udf/history?symbol=BTC-USD&resolution=1&from=abc&to=2', 400],
        ['/udf/symbols?symbol=NOPE-USD', 404],
      ];
      for (const [path, status] of udf) {
        const r = await get(path);
        expect(r.status, path).toBe(status);
        expect(r.body['s'], path).toBe('error');
        expect(typeof r.body['errmsg'], path).toBe('string');
      }
    });

    it('UDF config, symbols, search and time have the shapes the datafeed expects', async () => {
      expect((await get('/udf/config')).body).toMatchObject({
        supports_search: true,
        supports_time: true,
      });
      const info = (await get('/udf/symbols?symbol=Candlestream:BTC-USD')).body;
      expect(info).toMatchObject({
        name: 'BTC-USD',
        ticker: 'BTC-USD',
        session: '24x7',
        timezone: 'Etc/UTC',
        has_intraday: true,
      });
      expect(info).not.toHaveProperty('s');
      const search = await fetch(`${base}/udf/search?query=eth&limit=10`).then((r) => r.json());
      expect(search).toEqual([expect.objectContaining({ symbol: 'ETH-USD', ticker: 'ETH-USD' })]);
      const time = Number(await (await fetch(`${base}/udf/time`)).text());
      expect(Math.abs(time - Date.now() / 1_000)).toBeLessThan(60);
      expect((await get('/openapi.json')).body).toMatchObject({ openapi: '3.1.0' });
      expect((await get('/health')).body).toMatchObject({
        status: 'ok',
        service: 'datastore',
        state: 'live.healthy',
      });
    });

    it('answers 503 with a clear message while storage is unreachable, and health says degraded', async () => {
      const orphan = await startDatastore(
        loadDatastoreConfig({
          ...env,
          DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
          SYMBOLS: 'BTC-USD',
        }),
        logger,
      );
      try {
        const url = `http://127.0.0.1:${orphan.port}`;
        const r = await fetch(
          `${url}/ohlcv?symbol=BTC-USD&startDate=${toIso(Date.now() - HOUR_MS)}`,
        );
        expect(r.status).toBe(503);
        expect(((await r.json()) as Json)['error']).toMatch(/storage is unavailable/);
        const health = (await (await fetch(`${url}/health`)).json()) as Json;
        expect(health['status']).toBe('degraded');
      } finally {
        await orphan.stop();
      }
    });

    describe('AUTH_MODE=jwt and rate limits', () => {
      let secured: Datastore;
      let url: string;
      beforeAll(async () => {
        secured = await startDatastore(
          loadDatastoreConfig({
            ...env,
            // Budgets of its own: under the first datastore's prefix, the requests that one
            // answered from this address would count here too (refused tokens now take from it).
            CACHE_PREFIX: `${uniqueName('ds_jwt')}:`,
            AUTH_MODE: 'jwt',
            JWT_SECRET: SECRET,
            RATE_LIMIT_PER_MINUTE: '5',
          }),
          logger,
        );
        url = `http://127.0.0.1:${secured.port}`;
      });
      afterAll(() => secured?.stop());

      it('requires a valid, unexpired Bearer token on data paths and the stream, not on /health', async () => {
        const path = `/ohlcv?symbol=BTC-USD&startDate=${toIso(Date.now() - HOUR_MS)}`;
        expect((await fetch(`${url}${path}`)).status).toBe(401);
        const expired = jwt.sign({ sub: 'old', exp: Math.floor(Date.now() / 1_000) - 60 }, SECRET, {
          algorithm: 'HS256',
        });
        const bad = await fetch(`${url}${path}`, {
          headers: { authorization: `Bearer ${expired}` },
        });
        expect(bad.status).toBe(401);
        expect(((await bad.json()) as Json)['error']).toMatch(/expired/);
        const token = jwt.sign({ sub: 'alice' }, SECRET, { algorithm: 'HS256', expiresIn: 60 });
        expect(
          (await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } })).status,
        ).toBe(200);
        expect((await fetch(`${url}/health`)).status).toBe(200);
        const refused = await new Promise<number>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${secured.port}/stream`);
          ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
          ws.on('open', () => resolve(101));
          ws.on('error', () => undefined);
        });
        expect(refused).toBe(401);
      });

      it('answers 429 with Retry-After once a client is over its limit', async () => {
        const token = jwt.sign({ sub: 'bob' }, SECRET, { algorithm: 'HS256', expiresIn: 60 });
        const statuses: number[] = [];
        let retryAfter: string | null = null;
        for (let i = 0; i < 7; i++) {
          const r = await fetch(`${url}/udf/config`, {
            headers: { authorization: `Bearer ${token}` },
          });
          statuses.push(r.status);
          if (r.status === 429) retryAfter = r.headers.get('retry-after');
        }
        expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
        expect(statuses.slice(5)).toEqual([429, 429]);
        expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
      });
    });
  },
);
