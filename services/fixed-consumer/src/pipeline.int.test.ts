import { startBroker, type RunningBroker } from '@candlestream/broker';
import { MemoryLiveBarStore } from '@candlestream/cache';
import type { Bar, BarUpdate, MarketSymbol, Tick } from '@candlestream/core';
import {
  aggregateTicks,
  decodeBarUpdate,
  diffBars,
  encodeTick,
  MINUTE_MS,
  SimulatedClock,
} from '@candlestream/core';
import { makeTick } from '@candlestream/core/testing';
import { migrate, Repository } from '@candlestream/db';
import type { ConsumedBatch } from '@candlestream/kafka';
import { BatchConsumer, createKafka, ensureTopics, KafkaPublisher } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { Metrics } from '@candlestream/runtime';
import type { TestDatabase } from '@candlestream/testkit';
import { createTestDatabase, needServices, uniqueName } from '@candlestream/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline } from './pipeline.js';

const services = needServices(['postgres']);
const BTC = 'BTC-USD' as MarketSymbol;
const T0 = Date.UTC(2026, 10, 16, 12); // a Monday noon
const logger = silentLogger();

function batchOf(trades: readonly Tick[], from = 0): ConsumedBatch {
  return {
    topic: 'tick-data',
    partition: 0,
    messages: trades.map((t, i) => ({
      topic: 'tick-data',
      partition: 0,
      offset: String(from + i),
      key: Buffer.from(t.symbol),
      value: Buffer.from(encodeTick(t)),
      headers: {},
      timestamp: Date.now(),
    })),
  };
}

describe.skipIf(services.skip)('Pipeline (PostgreSQL, embedded broker)', () => {
  let broker: RunningBroker;
  let db: TestDatabase;
  let repository: Repository;
  let publisher: KafkaPublisher;
  let listener: BatchConsumer;
  const updates: BarUpdate[] = [];
  const topics = {
    ticks: uniqueName('ticks'),
    dlq: uniqueName('dlq'),
    barUpdates: uniqueName('bars'),
  };

  beforeAll(async () => {
    broker = await startBroker({ port: 0 });
    db = await createTestDatabase(services.get('postgres').url, 'pipeline');
    await migrate({ url: db.url }, { logger });
    repository = new Repository({ url: db.url, logger });
    const kafka = createKafka({ brokers: [broker.brokers], clientId: 'test', logger });
    await ensureTopics(
      kafka,
      Object.values(topics).map((name) => ({ name, partitions: 1 })),
    );
    publisher = new KafkaPublisher(kafka);
    await publisher.connect();
    listener = new BatchConsumer(kafka, { groupId: uniqueName('g'), topics: [topics.barUpdates] });
    await listener.start((batch) => {
      for (const m of batch.messages) {
        const decoded = decodeBarUpdate(m.value ?? '');
        if (decoded.ok) updates.push(decoded.value);
      }
      return Promise.resolve();
    });
  });

  afterAll(async () => {
    await listener.stop();
    await publisher.disconnect();
    await repository.close();
    await broker.stop();
    await db.drop();
  });

  /** A pipeline over this file's database and topics, restored from storage as at a start. */
  async function restoredPipeline(metrics = new Metrics('test')): Promise<Pipeline> {
    const pipeline = new Pipeline({
      repository,
      publisher,
      liveStore: new MemoryLiveBarStore(),
      topics,
      clock: new SimulatedClock(T0),
      logger,
      metrics,
      latenessMs: 0,
    });
    await pipeline.restore(new AbortController().signal);
    return pipeline;
  }

  it('regression: a late trade re-announces the closed bars it changed and the forming bars above them', async () => {
    const pipeline = await restoredPipeline();
    const signal = new AbortController().signal;
    const context = { heartbeat: () => Promise.resolve(), signal };
    const onTime = [0, 1, 2, 3].map((m) =>
      makeTick({ symbol: BTC, ts: T0 + m * MINUTE_MS + 5_000, price: 100 + m, id: `on-${m}` }),
    );
    await pipeline.handleBatch(batchOf(onTime), context);
    // Minute 1 has closed; this trade is late for the live candles but not for storage.
    const late = makeTick({
      symbol: BTC,
      ts: T0 + MINUTE_MS + 30_000,
      price: 250,
      size: 2,
      id: 'late',
    });
    await pipeline.handleBatch(batchOf([late], 10), context);

    const all = [...onTime, late];
    const want1m = aggregateTicks(all, '1m').get(BTC)!;
    const want5m = aggregateTicks(all, '5m').get(BTC)!;
    await expect
      .poll(() => updates.some((u) => u.final && u.interval === '1m' && u.bar.high === 250), {
        timeout: 10_000,
      })
      .toBe(true);
    const corrected = updates.filter(
      (u) => u.final && u.interval === '1m' && u.bar.time === T0 + MINUTE_MS,
    );
    expect(diffBars([want1m[1]!], [corrected[corrected.length - 1]!.bar])).toEqual([]);
    // The forming 5m bar folds the corrected minute: it is what the oracle says over all trades.
    expect(diffBars(want5m, [pipeline.forming(BTC, '5m')!], { volumeRelTol: 1e-12 })).toEqual([]);
    const forming5m = updates.filter((u) => !u.final && u.interval === '5m');
    expect(
      diffBars(want5m, [forming5m[forming5m.length - 1]!.bar], { volumeRelTol: 1e-12 }),
    ).toEqual([]);
    // And the database agrees.
    expect(diffBars(want1m, await repository.readBars(BTC, '1m', T0, T0 + 5 * MINUTE_MS))).toEqual(
      [],
    );
  });

  it('regression: a trade the database would refuse never reaches the live candles', async () => {
    const metrics = new Metrics('test');
    const pipeline = await restoredPipeline(metrics);
    const ETH = 'ETH-USD' as MarketSymbol;
    const t0 = T0 + 60 * MINUTE_MS;
    const signal = new AbortController().signal;
    const context = { heartbeat: () => Promise.resolve(), signal };
    const good = [0, 1, 2, 3].map((m) =>
      makeTick({ symbol: ETH, ts: t0 + m * MINUTE_MS + 5_000, price: 100 + m, id: `eth-${m}` }),
    );
    // PostgreSQL text cannot hold U+0000: storage refuses this trade.
    const refused = makeTick({
      symbol: ETH,
      ts: t0 + MINUTE_MS + 9_000,
      price: 999,
      size: 1,
      id: 'bad\u0000id',
    });
    await pipeline.handleBatch(
      batchOf([good[0]!, good[1]!, refused, good[2]!, good[3]!], 100),
      context,
    );

    await expect
      .poll(
        () =>
          updates.some(
            (u) =>
              u.symbol === ETH &&
              u.final &&
              u.interval === '1m' &&
              u.bar.time === t0 + 2 * MINUTE_MS,
          ),
        { timeout: 10_000 },
      )
      .toBe(true);
    const want1m = aggregateTicks(good, '1m').get(ETH)!;
    const finals = updates.filter((u) => u.symbol === ETH && u.final && u.interval === '1m');
    expect(
      diffBars(
        want1m.slice(0, 3),
        finals.map((u) => u.bar),
      ),
    ).toEqual([]);
    expect(updates.filter((u) => u.symbol === ETH && u.bar.high === 999)).toEqual([]);
    expect(diffBars(want1m, await repository.readBars(ETH, '1m', t0, t0 + 5 * MINUTE_MS))).toEqual(
      [],
    );
    expect(await metrics.render()).toMatch(/messages_dead_lettered_total 1\b/);
  });

  it('corrects the bars of a trade the database refuses for a reason decode does not know', async () => {
    // A rule only this database has: decode lets the trade through, storage refuses it.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query('ALTER TABLE ticks ADD CONSTRAINT no_777 CHECK (price <> 777)');
    await client.end();
    const pipeline = await restoredPipeline();
    const SOL = 'SOL-USD' as MarketSymbol;
    const t0 = T0 + 120 * MINUTE_MS;
    const context = { heartbeat: () => Promise.resolve(), signal: new AbortController().signal };
    const good = [0, 1, 2, 3].map((m) =>
      makeTick({ symbol: SOL, ts: t0 + m * MINUTE_MS + 5_000, price: 100 + m, id: `sol-${m}` }),
    );
    const refused = makeTick({ symbol: SOL, ts: t0 + MINUTE_MS + 9_000, price: 777, id: 'x' });
    await pipeline.handleBatch(
      batchOf([good[0]!, good[1]!, refused, good[2]!, good[3]!], 200),
      context,
    );
    const want1m = aggregateTicks(good, '1m').get(SOL)!;
    const lastFinal = (time: number): Bar | undefined =>
      updates
        .filter((u) => u.symbol === SOL && u.final && u.interval === '1m' && u.bar.time === time)
        .at(-1)?.bar;
    // The minute went out final with the refused trade in it, then again as storage has it.
    await expect.poll(() => lastFinal(t0 + MINUTE_MS)?.high, { timeout: 10_000 }).toBe(101);
    expect(
      diffBars(
        want1m.slice(0, 3),
        [0, 1, 2].map((m) => lastFinal(t0 + m * MINUTE_MS)!),
      ),
    ).toEqual([]);
    expect(
      diffBars([aggregateTicks(good, '5m').get(SOL)![0]!], [pipeline.forming(SOL, '5m')!]),
    ).toEqual([]);
  });
});
