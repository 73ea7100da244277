/**
 * The coordinator against the embedded broker and PostgreSQL. The producer's and the dynamic
 * consumer's parts are played by the test (it reads the commands and publishes their reports),
 * so what is checked is the coordinator's: planning, topics, commands, job state, restarts.
 */
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type {
  BackfillCommand,
  BackfillReport,
  BackfillRequest,
  MarketSymbol,
  TimeRange,
} from '@candlestream/core';
import {
  BACKFILL_MESSAGE_VERSION,
  decodeBackfillCommand,
  decodeBackfillReport,
  encodeBackfillMessage,
  HOUR_MS,
  mergeRanges,
  MINUTE_MS,
} from '@candlestream/core';
import { makeTick } from '@candlestream/core/testing';
import { BackfillJobs, migrate, Repository } from '@candlestream/db';
import { BatchConsumer, createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import type { TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, uniqueName, waitUntil } from '@candlestream/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadCoordinatorConfig } from './config.js';
import type { Coordinator } from './service.js';
import { startCoordinator } from './service.js';

const services = needServices(['postgres']);
const logger = silentLogger();
const BTC = 'BTC-USD' as MarketSymbol;
/** Old enough that no part of it is the live tail. */
const T0 = Date.UTC(2026, 9, 5, 0);
const m = (n: number): number => T0 + n * MINUTE_MS;

describe.skipIf(services.skip)('coordinator (embedded broker, PostgreSQL)', () => {
  let broker: RunningBroker;
  let db: TestDatabase;
  let repository: Repository;
  let jobs: BackfillJobs;
  let publisher: KafkaPublisher;
  const kafka = () => createKafka({ brokers: [broker.brokers], clientId: 'test', logger });
  const commands: BackfillCommand[] = [];
  const reports: BackfillReport[] = [];
  const listeners: BatchConsumer[] = [];
  const running: Coordinator[] = [];

  beforeAll(async () => {
    broker = await startBroker({ port: 0 });
    db = await createTestDatabase(services.get('postgres').url, 'coordinator');
    await migrate({ url: db.url }, { logger });
    repository = new Repository({ url: db.url, logger });
    jobs = new BackfillJobs(repository);
    publisher = new KafkaPublisher(kafka());
    await publisher.connect();
    const follow = (topic: string, onValue: (value: Buffer) => void): void => {
      const consumer = new BatchConsumer(kafka(), { groupId: uniqueName('test'), topics: [topic] });
      listeners.push(consumer);
      void consumer.start((batch) => {
        for (const message of batch.messages) if (message.value) onValue(message.value);
        return Promise.resolve();
      });
    };
    await start(); // creates the topics the listeners subscribe to
    follow(TOPICS.backfillCommands.name, (v) => {
      const decoded = decodeBackfillCommand(v);
      if (decoded.ok) commands.push(decoded.value);
    });
    follow(TOPICS.backfillStatus.name, (v) => {
      const decoded = decodeBackfillReport(v);
      if (decoded.ok) reports.push(decoded.value);
    });
  });
  afterEach(async () => {
    for (const c of running.splice(0)) await c.stop();
  });
  afterAll(async () => {
    for (const l of listeners) await l.stop();
    for (const c of running) await c.stop();
    await publisher?.disconnect();
    await repository?.close();
    await db?.drop();
    await broker?.stop();
  });

  async function start(env: Record<string, string> = {}): Promise<Coordinator> {
    const coordinator = await startCoordinator(
      loadCoordinatorConfig({
        KAFKA_BROKERS: broker.brokers,
        DATABASE_URL: db.url,
        HEALTH_PORT: '0',
        BACKFILL_TOPIC_TTL_MS: '500',
        ...env,
      }),
      logger,
      { sweepIntervalMs: 200 },
    );
    running.push(coordinator);
    await waitUntil('running', () => coordinator.health().status === 'ok', 30_000);
    return coordinator;
  }

  let n = 0;
  async function request(from: number, to: number): Promise<string> {
    const id = `job-${++n}-${uniqueName('j').slice(-6)}`;
    const message: BackfillRequest = {
      v: BACKFILL_MESSAGE_VERSION,
      id,
      symbol: BTC,
      from,
      to,
      requestedAt: Date.now(),
      requestedBy: 'test',
    };
    await publisher.send(TOPICS.backfillRequests.name, [
      { key: BTC, value: encodeBackfillMessage(message) },
    ]);
    return id;
  }

  /** The stand-in for a participant. */
  async function report(
    id: string,
    status: BackfillReport['status'],
    reporter: BackfillReport['reporter'],
    extra: Partial<BackfillReport> = {},
  ): Promise<void> {
    const message: BackfillReport = {
      v: 1,
      id,
      symbol: BTC,
      status,
      reporter,
      at: Date.now(),
      ...extra,
    };
    await publisher.send(TOPICS.backfillStatus.name, [
      { key: id, value: encodeBackfillMessage(message) },
    ]);
  }

  const commandOf = async (id: string): Promise<BackfillCommand> => {
    await waitUntil(`command of ${id}`, () => commands.some((c) => c.id === id), 20_000);
    return commands.find((c) => c.id === id)!;
  };
  const statusOf = async (id: string) => (await jobs.get(id))?.status;
  const topicExists = async (topic: string): Promise<boolean> => {
    const admin = kafka().admin();
    await admin.connect();
    try {
      return (await admin.listTopics()).includes(topic);
    } finally {
      await admin.disconnect();
    }
  };

  it('plans only the missing minutes, creates the job topic, follows the reports to done, then deletes the topic', async () => {
    const coordinator = running[0]!;
    // Trades in minutes 30-39: stored, so not fetched again.
    await repository.insertTrades(
      Array.from({ length: 10 }, (_, i) =>
        makeTick({ symbol: BTC, ts: m(30 + i) + 1_000, price: 100 + i, id: `t${i}` }),
      ),
    );
    const id = await request(m(0), m(60));
    const command = await commandOf(id);
    expect(command.ranges).toEqual([
      { from: m(0), to: m(30) },
      { from: m(40), to: m(60) },
    ]);
    expect(command.topic).toBe(`backfill.BTC-USD.${id}`);
    expect(await topicExists(command.topic)).toBe(true);
    expect(await jobs.get(id)).toMatchObject({
      status: 'fetching',
      progress: { done: 0, total: 50 },
    });

    await report(id, 'fetching', 'producer', { progress: { done: 20, total: 50 } });
    await waitUntil('progress', async () => (await jobs.get(id))?.progress.done === 20, 10_000);
    await report(id, 'storing', 'dynamic-consumer', { progress: { done: 10, total: 50 } });
    await waitUntil('storing', async () => (await statusOf(id)) === 'storing', 10_000);
    const gap = [{ from: m(0), to: m(5), reason: 'beyond the source history' }];
    await report(id, 'done', 'dynamic-consumer', { unavailable: gap });
    await waitUntil('done', async () => (await statusOf(id)) === 'done', 10_000);
    expect(await jobs.get(id)).toMatchObject({
      progress: { done: 50, total: 50 },
      unavailable: gap,
      error: null,
    });
    await waitUntil(
      'coordinator announced done',
      () => reports.some((r) => r.id === id && r.reporter === 'coordinator' && r.status === 'done'),
      10_000,
    );
    expect(
      reports.filter((r) => r.id === id && r.reporter === 'coordinator').map((r) => r.status),
    ).toEqual(['queued', 'fetching', 'storing', 'done']);
    // The topic existed during the job and is gone after BACKFILL_TOPIC_TTL_MS.
    await waitUntil('topic deleted', async () => !(await topicExists(command.topic)), 15_000);
    await waitUntil(
      'deletion recorded',
      async () => (await jobs.get(id))?.topicDeletedAt !== null,
      10_000,
    );
    expect(coordinator.metrics).toBeDefined();

    // The same range again: nothing is missing any more (stored, or fetched by the done job).
    const again = await request(m(0), m(60));
    await waitUntil('planned', async () => (await statusOf(again)) === 'done', 10_000);
    expect(commands.some((c) => c.id === again)).toBe(false);
  }, 60_000);

  it('20 concurrent overlapping requests fetch each missing minute once; those that only overlap wait and end with them', async () => {
    await start();
    const base = T0 + 5 * 24 * HOUR_MS;
    const wanted: TimeRange[] = Array.from({ length: 20 }, (_, i) => {
      const from = base + ((i * 37) % 300) * MINUTE_MS;
      return { from, to: from + (60 + ((i * 53) % 240)) * MINUTE_MS };
    });
    const ids = await Promise.all(wanted.map((w) => request(w.from, w.to)));
    await waitUntil(
      'all planned',
      async () => {
        for (const id of ids) if ((await jobs.get(id))?.progress.total === undefined) return false;
        const recorded = await Promise.all(ids.map((id) => jobs.get(id)));
        return recorded.every(
          (j) => j && (j.ranges.length > 0 || j.waitsOn.length > 0 || j.status === 'done'),
        );
      },
      20_000,
    );
    const recorded = (await Promise.all(ids.map((id) => jobs.get(id)))).map((j) => j!);
    const claimed = recorded.flatMap((j) => j.ranges).sort((a, b) => a.from - b.from);
    // Disjoint: no minute is fetched by two jobs...
    for (let i = 1; i < claimed.length; i++)
      expect(claimed[i]!.from).toBeGreaterThanOrEqual(claimed[i - 1]!.to);
    // ...and together they are every minute asked for.
    expect(mergeRanges(claimed)).toEqual(mergeRanges(wanted));
    // At most BACKFILL_MAX_JOBS (2) fetch at once; finishing them lets the next ones start.
    const fetchers = recorded.filter((j) => j.ranges.length > 0);
    for (let round = 0; round < fetchers.length; round++) {
      await waitUntil(
        'commands so far',
        () =>
          commands.filter((c) => ids.includes(c.id)).length >= Math.min(round + 1, fetchers.length),
        20_000,
      );
      const sent = commands.filter((c) => ids.includes(c.id));
      const open = sent.filter(
        (c) =>
          !reports.some(
            (r) => r.id === c.id && r.reporter === 'coordinator' && r.status === 'done',
          ),
      );
      expect(open.length).toBeLessThanOrEqual(2);
      const next = open[0]!;
      await report(next.id, 'done', 'dynamic-consumer');
      await waitUntil('ended', async () => (await statusOf(next.id)) === 'done', 10_000);
    }
    await waitUntil(
      'every job done',
      async () => (await Promise.all(ids.map(statusOf))).every((s) => s === 'done'),
      20_000,
    );
  }, 120_000);

  it('a coordinator restarted mid-job resumes it, and plans a request sent while it was down', async () => {
    await start();
    const base = T0 + 10 * 24 * HOUR_MS;
    const first = await request(base, base + HOUR_MS);
    await commandOf(first);
    await running.shift()!.stop();
    const whileDown = await request(base + 2 * HOUR_MS, base + 3 * HOUR_MS);
    await report(first, 'storing', 'dynamic-consumer', { progress: { done: 30, total: 60 } });
    await start();
    await waitUntil(
      'resumed job storing',
      async () => (await statusOf(first)) === 'storing',
      20_000,
    );
    await report(first, 'done', 'dynamic-consumer');
    await waitUntil('first done', async () => (await statusOf(first)) === 'done', 20_000);
    const command = await commandOf(whileDown);
    expect(command.ranges).toEqual([{ from: base + 2 * HOUR_MS, to: base + 3 * HOUR_MS }]);
    // Sent once: the restart did not send the first job's command again.
    expect(commands.filter((c) => c.id === first)).toHaveLength(1);
  }, 90_000);
});
