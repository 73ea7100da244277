/**
 * Backfills through the datastore against real PostgreSQL, Redis and the embedded broker:
 * POST/GET /backfills, history misses on /ohlcv and /udf/history (started, joined, debounced,
 * waited for) and /stream's `history` message.
 *
 * The coordinator is another service (services/coordinator, being built beside this). Here a
 * stand-in of the test's own plays it: it reads backfill-requests, writes the backfill_jobs rows
 * the coordinator would write, stores candles as the dynamic consumer would, and reports done on
 * backfill-status as the coordinator does. It is the test's, and says so in its name.
 */
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type {
  Bar,
  BackfillReport,
  BackfillRequest,
  EpochMs,
  MarketSymbol,
  UnavailableRange,
} from '@candlestream/core';
import {
  BACKFILL_MESSAGE_VERSION,
  decodeBackfillRequest,
  encodeBackfillMessage,
  HOUR_MS,
  MINUTE_MS,
  floorBucket,
  toIso,
} from '@candlestream/core';
import { BackfillJobs, migrate, Repository } from '@candlestream/db';
import type { KafkaClient } from '@candlestream/kafka';
import { BatchConsumer, createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import type { TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, uniqueName, waitUntil } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadDatastoreConfig } from './config.js';
import type { Datastore } from './service.js';
import { startDatastore } from './service.js';

const services = needServices(['postgres', 'redis']);
const logger = silentLogger();
const WAIT_MS = 60_000;
const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'ADA-USD', 'XRP-USD', 'LTC-USD', 'DOT-USD'];
/** Whole hours three days ago: closed long since, so chunks of it are cached. */
const D = floorBucket(Date.now() - 3 * 24 * HOUR_MS, '1h');

interface Json {
  [key: string]: unknown;
}

function minutes(from: EpochMs, to: EpochMs, close: number): Bar[] {
  const out: Bar[] = [];
  for (let t = from; t < to; t += MINUTE_MS)
    out.push({ time: t, open: close, high: close, low: close, close, volume: 1 });
  return out;
}

/** The test's stand-in for the coordinator and the dynamic consumer (see the file's comment). */
class StandInCoordinator {
  readonly requests: { key: string; request: BackfillRequest }[] = [];
  /** While false, requests are only recorded as queued; finish() completes them. */
  autoFinish = true;
  readonly #consumer: BatchConsumer;
  readonly #publisher: KafkaPublisher;

  constructor(
    kafka: KafkaClient,
    private readonly jobs: BackfillJobs,
    private readonly repo: Repository,
  ) {
    this.#consumer = new BatchConsumer(kafka, {
      groupId: uniqueName('stand-in-coordinator'),
      topics: [TOPICS.backfillRequests.name],
      fromBeginning: true,
      maxWaitTimeMs: 20,
    });
    this.#publisher = new KafkaPublisher(kafka);
  }

  async start(): Promise<void> {
    await this.#publisher.connect();
    void this.#consumer.start(async (batch) => {
      for (const m of batch.messages) {
        const decoded = decodeBackfillRequest(m.value ?? '');
        if (!decoded.ok) throw new Error(decoded.reason);
        const request = decoded.value;
        this.requests.push({ key: m.key?.toString() ?? '', request });
        await this.jobs.create(request, Date.now());
        if (this.autoFinish) await this.finish(request.id);
      }
    });
  }

  requestsFor(symbol: string): BackfillRequest[] {
    return this.requests.filter((r) => r.request.symbol === symbol).map((r) => r.request);
  }

  /** Stores the job's range as candles (close 77) and reports it done. */
  async finish(id: string, unavailable: UnavailableRange[] = []): Promise<void> {
    const job = (await this.jobs.get(id))!;
    const ranges = [{ from: job.from, to: job.to }];
    const total = Math.round((job.to - job.from) / MINUTE_MS);
    await this.jobs.update(id, { status: 'fetching', ranges, startedAt: Date.now() }, Date.now());
    await this.repo.upsertCandles(job.symbol, minutes(job.from, job.to, 77), 'backfill');
    await this.repo.refreshAggregates(job.from, job.to);
    await this.jobs.update(
      id,
      { status: 'done', progress: { done: total, total }, finishedAt: Date.now(), unavailable },
      Date.now(),
    );
    await this.report({ ...job, status: 'done' });
  }

  async report(job: {
    id: string;
    symbol: MarketSymbol;
    from: EpochMs;
    to: EpochMs;
    status: 'done';
  }): Promise<void> {
    const report: BackfillReport = {
      v: BACKFILL_MESSAGE_VERSION,
      id: job.id,
      symbol: job.symbol,
      status: job.status,
      reporter: 'coordinator',
      at: Date.now(),
      from: job.from,
      to: job.to,
    };
    await this.#publisher.send(TOPICS.backfillStatus.name, [
      { key: job.id, value: encodeBackfillMessage(report) },
    ]);
  }

  async stop(): Promise<void> {
    await this.#consumer.stop();
    await this.#publisher.disconnect();
  }
}

describe.skipIf(services.skip)(
  'backfills through the datastore (PostgreSQL, Redis, broker)',
  () => {
    let broker: RunningBroker;
    let db: TestDatabase;
    let repo: Repository;
    let jobs: BackfillJobs;
    let datastore: Datastore;
    let coordinator: StandInCoordinator;
    let base: string;

    async function call(
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: Json }> {
      const init: RequestInit = { method, headers };
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        init.headers = { 'content-type': 'application/json', ...headers };
      }
      const response = await fetch(`${base}${path}`, init);
      return { status: response.status, body: (await response.json()) as Json };
    }
    const get = (path: string) => call('GET', path);

    beforeAll(async () => {
      broker = await startBroker({ port: 0 });
      db = await createTestDatabase(services.get('postgres').url, 'ds_backfills');
      await migrate({ url: db.url }, { logger });
      repo = new Repository({ url: db.url, logger });
      jobs = new BackfillJobs(repo);
      datastore = await startDatastore(
        loadDatastoreConfig({
          KAFKA_BROKERS: broker.brokers,
          DATABASE_URL: db.url,
          REDIS_URL: services.get('redis').url,
          CACHE_PREFIX: `${uniqueName('dsbf')}:`,
          PORT: '0',
          SYMBOLS: SYMBOLS.join(','),
          RATE_LIMIT_PER_MINUTE: '100000',
        }),
        logger,
      );
      base = `http://127.0.0.1:${datastore.port}`;
      await waitUntil('datastore live', () => datastore.state() === 'live.healthy', WAIT_MS);
      const kafka = createKafka({ brokers: [broker.brokers], clientId: 'test', logger });
      coordinator = new StandInCoordinator(kafka, jobs, repo);
      await coordinator.start();
    }, 120_000);

    afterAll(async () => {
      await coordinator?.stop();
      await datastore?.stop();
      await repo?.close();
      await db?.drop();
      await broker?.stop();
    });

    it('POST /backfills refuses bad input with a 400 naming the field, and unknown symbols with 404', async () => {
      const post = (body: unknown) => call('POST', '/backfills', body);
      const ok = { symbol: 'BTC-USD', from: '2026-01-01', to: '2026-01-02' };
      const cases: [unknown, number, RegExp][] = [
        ['{"symbol":', 400, /JSON|Unexpected|position/i],
        [[1, 2], 400, /JSON object/],
        [{ ...ok, symbol: undefined }, 400, /^symbol /],
        [{ ...ok, symbol: 'nope' }, 400, /^symbol /],
        [{ ...ok, from: undefined }, 400, /^from /],
        [{ ...ok, from: '1767225600' }, 400, /^from .*epoch milliseconds.*append 000/],
        [{ ...ok, to: 'tomorrow' }, 400, /^to .*ISO-8601/],
        [{ ...ok, to: '2026-01-01' }, 400, /^to .* must be after from/],
        [{ ...ok, to: '2027-06-01' }, 400, /more than 400 days/],
        [{ ...ok, symbol: 'DOGE-USD' }, 404, /unknown symbol DOGE-USD/],
      ];
      for (const [body, status, message] of cases) {
        const answer = await post(body);
        expect({ body, status: answer.status }).toEqual({ body, status });
        expect(answer.body['error']).toMatch(message);
      }
      // Epoch ms as JSON numbers are fine; nothing above was published.
      const numeric = await post({ symbol: 'BTC-USD', from: D, to: D + HOUR_MS });
      expect(numeric.status).toBe(202);
      await waitUntil(
        'the request read',
        () => coordinator.requestsFor('BTC-USD').length > 0,
        WAIT_MS,
      );
      expect(coordinator.requestsFor('BTC-USD')).toHaveLength(1);
    });

    it('POST answers 202 queued at once; GET follows the job from the queued view to done, and lists it', async () => {
      coordinator.autoFinish = false;
      try {
        const from = D - 24 * HOUR_MS;
        const posted = await call('POST', '/backfills', {
          symbol: 'ethusd',
          from: toIso(from),
          to: String(from + 2 * HOUR_MS),
        });
        expect(posted.status).toBe(202);
        const id = posted.body['id'] as string;
        expect(id).toMatch(/^[0-9a-f-]{36}$/);
        expect(posted.body).toMatchObject({
          id,
          symbol: 'ETH-USD',
          from: toIso(from),
          to: toIso(from + 2 * HOUR_MS),
          status: 'queued',
          progress: { done: 0, total: 0 },
          startedAt: null,
          finishedAt: null,
          error: null,
          unavailable: [],
        });
        // Before the coordinator recorded it, this process still knows it.
        const early = await get(`/backfills/${id}`);
        expect(early.status).toBe(200);
        expect(early.body).toMatchObject({ id, status: 'queued' });
        await waitUntil(
          'the job recorded',
          async () => (await jobs.get(id)) !== undefined,
          WAIT_MS,
        );
        const published = coordinator.requests.find((r) => r.request.id === id)!;
        expect(published.key).toBe('ETH-USD');
        expect(published.request).toMatchObject({
          symbol: 'ETH-USD',
          from,
          to: from + 2 * HOUR_MS,
          requestedBy: 'api',
        });
        await coordinator.finish(id);
        const done = await get(`/backfills/${id}`);
        expect(done.body).toMatchObject({
          id,
          status: 'done',
          progress: { done: 120, total: 120 },
          error: null,
        });
        expect(typeof done.body['finishedAt']).toBe('string');
        const listed = await get('/backfills?symbol=ETH-USD&limit=5');
        expect((listed.body['backfills'] as Json[]).map((j) => j['id'])).toContain(id);
        const all = await get('/backfills');
        expect((all.body['backfills'] as Json[])[0]).toMatchObject({ id });
        expect((await get('/backfills?limit=501')).status).toBe(400);
        expect((await get('/backfills/no-such-job')).status).toBe(404);
        expect((await get('/backfills/bad%20id')).status).toBe(404);
      } finally {
        coordinator.autoFinish = true;
      }
    });

    it('/ohlcv before the stored coverage starts one backfill for a burst, answers at once with what is stored, and ?wait answers with the backfilled bars', async () => {
      const symbol = 'SOL-USD' as MarketSymbol;
      await repo.upsertCandles(symbol, minutes(D, D + 2 * HOUR_MS, 10), 'test');
      coordinator.autoFinish = false;
      const url = `/ohlcv?symbol=${symbol}&startDate=${toIso(D - HOUR_MS)}&endDate=${toIso(D + 2 * HOUR_MS)}`;
      try {
        // Within the coverage: no backfill.
        const inside = await get(
          `/ohlcv?symbol=${symbol}&startDate=${toIso(D)}&endDate=${toIso(D + HOUR_MS)}`,
        );
        expect(inside.body['backfill']).toBeUndefined();
        const burst = await Promise.all(Array.from({ length: 6 }, () => get(url)));
        for (const answer of burst) {
          expect(answer.status).toBe(200);
          expect((answer.body['bars'] as unknown[]).length).toBe(120);
          expect(answer.body['backfill']).toEqual({ id: expect.any(String), status: 'queued' });
        }
        const ids = new Set(burst.map((a) => (a.body['backfill'] as Json)['id']));
        expect(ids.size).toBe(1);
        const [id] = [...ids] as string[];
        await waitUntil(
          'the request read',
          () => coordinator.requestsFor(symbol).length > 0,
          WAIT_MS,
        );
        const request = coordinator.requestsFor(symbol)[0]!;
        expect(request).toMatchObject({ id, from: D - HOUR_MS, to: D, requestedBy: 'api' });
        await waitUntil(
          'the job recorded',
          async () => (await jobs.get(id!)) !== undefined,
          WAIT_MS,
        );
        // The job is running now: a later miss joins it instead of asking again.
        const joined = await get(
          `/ohlcv?symbol=${symbol}&startDate=${toIso(D - 30 * MINUTE_MS)}&endDate=${toIso(D + HOUR_MS)}`,
        );
        expect(joined.body['backfill']).toEqual({ id, status: 'queued' });
        // ?wait holds the answer until the job ends, then reads what it stored (past the cache,
        // which holds the empty hour from the answers above).
        const waiting = get(`${url}&wait=20000`);
        await new Promise((resolve) => setTimeout(resolve, 300));
        // The source had only hours for the first half hour: the answer says so.
        const unavailable = [
          {
            from: D - HOUR_MS,
            to: D - 30 * MINUTE_MS,
            reason: 'minutes beyond history',
            stored: '1h' as const,
          },
        ];
        await coordinator.finish(id!, unavailable);
        const waited = await waiting;
        expect(waited.body['backfill']).toEqual({
          id,
          status: 'done',
          unavailable: [
            { ...unavailable[0], from: toIso(D - HOUR_MS), to: toIso(D - 30 * MINUTE_MS) },
          ],
        });
        const bars = waited.body['bars'] as { time: string; close: number }[];
        expect(bars).toHaveLength(180);
        expect(bars[0]).toMatchObject({ time: toIso(D - HOUR_MS), close: 77 });
        // Done: the range is covered, no more backfills for it.
        const after = await get(url);
        expect(after.body['backfill']).toBeUndefined();
        expect(coordinator.requestsFor(symbol)).toHaveLength(1);
        expect((await get(`${url}&wait=30001`)).status).toBe(400);
        expect((await get(`${url}&wait=-1`)).body['error']).toMatch(/^wait /);
      } finally {
        coordinator.autoFinish = true;
      }
    });

    it('a hole inside the coverage is backfilled, coarser intervals too; /udf/history triggers and stays UDF', async () => {
      const symbol = 'ADA-USD' as MarketSymbol;
      await repo.upsertCandles(symbol, minutes(D, D + HOUR_MS, 10), 'test');
      await repo.upsertCandles(symbol, minutes(D + 2 * HOUR_MS, D + 3 * HOUR_MS, 10), 'test');
      await repo.refreshAggregates(D, D + 3 * HOUR_MS);
      const answer = await get(
        `/ohlcv?symbol=${symbol}&interval=1h&startDate=${toIso(D)}&endDate=${toIso(D + 3 * HOUR_MS)}&wait=20000`,
      );
      expect(answer.body['backfill']).toMatchObject({ status: 'done' });
      expect(coordinator.requestsFor(symbol)).toMatchObject([
        { from: D + HOUR_MS, to: D + 2 * HOUR_MS },
      ]);
      expect((answer.body['bars'] as Json[]).map((b) => b['time'])).toEqual([
        toIso(D),
        toIso(D + HOUR_MS),
        toIso(D + 2 * HOUR_MS),
      ]);

      const udf = await get(
        `/udf/history?symbol=XRP-USD&resolution=60&from=${(D - 2 * HOUR_MS) / 1_000}&to=${D / 1_000}`,
      );
      expect(udf.status).toBe(200);
      expect(udf.body).toEqual({ s: 'no_data' });
      await waitUntil(
        'the UDF miss requested',
        () => coordinator.requestsFor('XRP-USD').length > 0,
        WAIT_MS,
      );
      expect(coordinator.requestsFor('XRP-USD')[0]).toMatchObject({
        from: D - 2 * HOUR_MS,
        to: D,
        requestedBy: 'chart',
      });
    });

    it('/openapi.json and /docs describe the backfill routes and /ohlcv wait', async () => {
      const spec = (await get('/openapi.json')).body as { paths: Record<string, Json> };
      expect(Object.keys(spec.paths['/backfills']!)).toEqual(['post', 'get']);
      expect(spec.paths['/backfills/{id}']).toHaveProperty('get');
      expect(JSON.stringify(spec.paths['/ohlcv'])).toContain('"wait"');
      const page = await (await fetch(`${base}/docs`)).text();
      expect(page).toContain('<code>POST /backfills</code>');
      expect(page).toContain('<code>GET /backfills/{id}</code>');
    });

    it('/stream tells subscribers of the symbol that a backfill is done, with its range', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${datastore.port}/stream`);
      const messages: Json[] = [];
      ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString()) as Json));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      try {
        ws.send(JSON.stringify({ type: 'subscribe', symbol: 'LTC-USD', interval: '1m' }));
        await waitUntil(
          'subscribed',
          () => messages.some((m) => m['type'] === 'subscribed'),
          WAIT_MS,
        );
        const job = {
          id: 'stand-in-job',
          symbol: 'LTC-USD' as MarketSymbol,
          from: D - HOUR_MS,
          to: D,
          status: 'done' as const,
        };
        // The datastore follows backfill-status from the newest offsets: report until it hears.
        await waitUntil(
          'the history message',
          async () => {
            await coordinator.report(job);
            return messages.some((m) => m['type'] === 'history');
          },
          WAIT_MS,
        );
        expect(messages.find((m) => m['type'] === 'history')).toEqual({
          type: 'history',
          symbol: 'LTC-USD',
          backfill: { id: 'stand-in-job', status: 'done' },
          from: toIso(D - HOUR_MS),
          to: toIso(D),
        });
        // Other symbols' jobs are not announced to it.
        const before = messages.filter((m) => m['type'] === 'history').length;
        await coordinator.report({ ...job, symbol: 'DOT-USD' as MarketSymbol, id: 'other' });
        await coordinator.report({ ...job, id: 'marker' });
        await waitUntil(
          'the marker',
          () => messages.some((m) => (m['backfill'] as Json | undefined)?.['id'] === 'marker'),
          WAIT_MS,
        );
        expect(messages.filter((m) => m['type'] === 'history').length).toBeGreaterThan(before);
        expect(messages.some((m) => (m['backfill'] as Json | undefined)?.['id'] === 'other')).toBe(
          false,
        );
      } finally {
        ws.terminate();
      }
    });
  },
);
