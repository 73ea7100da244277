/**
 * The producer's backfilling region against the embedded broker: a BackfillCommand in, the job
 * topic read back (candles = the synthetic path's, one end marker), a redelivery after a restart
 * (resumes after the last candle, writes nothing twice), live trades flowing meanwhile, and a
 * CryptoCompare range partly beyond its minute history (hours there, then minutes).
 */
import { randomUUID } from 'node:crypto';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type {
  BackfillCommand,
  BackfillRecord,
  Bar,
  MarketSymbol,
  SpanBar,
  TimeRange,
} from '@candlestream/core';
import {
  BACKFILL_MESSAGE_VERSION,
  MINUTE_MS,
  SECOND_MS,
  backfillTopicName,
  candleEnd,
  candleRecord,
  decodeBackfillRecord,
  decodeBackfillReport,
  encodeBackfillMessage,
  parseSymbol,
} from '@candlestream/core';
import type { KafkaClient } from '@candlestream/kafka';
import {
  backfillTopic,
  createKafka,
  deleteTopics,
  ensureTopics,
  KafkaPublisher,
  readTopicTail,
  TOPICS,
} from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { needServices, uniqueName, waitUntil } from '@candlestream/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadProducerConfig } from './config.js';
import type { Producer } from './service.js';
import { startProducer } from './service.js';
import { cryptoCompareFetcher, STORED_HOURS_REASON } from './sources/backfill-fetchers.js';
import { startFakeCryptoCompare } from './sources/cryptocompare-fake.js';
import type { CcCandle } from './sources/cryptocompare-rest.js';
import { syntheticCandles } from './sources/synthetic.js';

const services = needServices(['kafka']);
const BTC = parseSymbol('BTC-USD');
const SYMBOLS: MarketSymbol[] = [BTC, parseSymbol('ETH-USD')];
const SEED = 7;
const RATE = 20;
const HOUR_MS = 60 * MINUTE_MS;
/** Well in the past, minute-aligned. */
const BASE_MS = Math.floor((Date.now() - 10 * 24 * HOUR_MS) / HOUR_MS) * HOUR_MS;
const WAIT_MS = 60_000;

describe.skipIf(services.skip)('producer backfilling region', () => {
  let broker: RunningBroker;
  let kafka: KafkaClient;
  let publisher: KafkaPublisher;
  const producers: Producer[] = [];

  beforeEach(async () => {
    broker = await startBroker({ port: 0 });
    kafka = createKafka({ brokers: [broker.brokers], clientId: 'test', logger: silentLogger() });
    await ensureTopics(kafka, [TOPICS.backfillCommands, TOPICS.backfillStatus, TOPICS.ticks]);
    publisher = new KafkaPublisher(kafka);
    await publisher.connect();
  });
  afterEach(async () => {
    for (const p of producers.splice(0)) await p.stop();
    await publisher.disconnect();
    await broker.stop();
  });

  async function producer(
    group = uniqueName('producer-backfill'),
    overrides: Parameters<typeof startProducer>[2] = {},
  ): Promise<Producer> {
    const p = await startProducer(
      loadProducerConfig({
        KAFKA_BROKERS: broker.brokers,
        SYMBOLS: SYMBOLS.join(','),
        PRODUCER_SOURCE: 'synthetic',
        SYNTHETIC_RATE: String(RATE),
        SYNTHETIC_SEED: String(SEED),
        PRODUCER_BACKFILL_GROUP: group,
        HEALTH_PORT: '0',
      }),
      silentLogger(),
      overrides,
    );
    producers.push(p);
    return p;
  }

  async function job(ranges: TimeRange[]): Promise<BackfillCommand> {
    const id = randomUUID();
    const topic = backfillTopicName(BTC, id);
    await ensureTopics(kafka, [backfillTopic(topic)]);
    return { v: BACKFILL_MESSAGE_VERSION, id, symbol: BTC, topic, ranges };
  }

  const send = (command: BackfillCommand): Promise<void> =>
    publisher.send(TOPICS.backfillCommands.name, [
      { key: command.id, value: encodeBackfillMessage(command) },
    ]);

  async function records(topic: string): Promise<BackfillRecord[]> {
    const all = await readTopicTail(kafka, topic, { perPartition: 1_000_000, timeoutMs: 20_000 });
    return all.map((m) => {
      const decoded = decodeBackfillRecord(m.value ?? '');
      if (!decoded.ok) throw new Error(decoded.reason);
      return decoded.value;
    });
  }

  async function lastType(topic: string): Promise<string | undefined> {
    const [last] = await readTopicTail(kafka, topic, { perPartition: 1, timeoutMs: 10_000 });
    return last ? (JSON.parse(last.value!.toString()) as { type: string }).type : undefined;
  }

  const expectedCandles = (ranges: TimeRange[]): Bar[] =>
    ranges.flatMap((r) =>
      syntheticCandles({ symbols: SYMBOLS, seed: SEED, tradesPerSecond: RATE }, BTC, r),
    );

  const candlesOf = (rs: BackfillRecord[]): SpanBar[] =>
    rs.flatMap((r) => {
      if (r.type !== 'candle') return [];
      const { v: _v, type: _type, symbol: _symbol, ...bar } = r;
      return [bar];
    });

  it('writes the deterministic candles of the command ranges, then one end marker, and reports progress', async () => {
    await producer();
    const ranges = [
      { from: BASE_MS, to: BASE_MS + 2 * HOUR_MS },
      { from: BASE_MS + 5 * HOUR_MS, to: BASE_MS + 5 * HOUR_MS + 30 * MINUTE_MS },
    ];
    const command = await job(ranges);
    await send(command);
    await waitUntil(
      'the end marker',
      async () => (await lastType(command.topic)) === 'end',
      WAIT_MS,
    );
    const written = await records(command.topic);
    const expected = expectedCandles(ranges);
    expect(expected).toHaveLength(150);
    expect(candlesOf(written)).toEqual(expected);
    expect(written.filter((r) => r.type !== 'candle')).toEqual([
      { v: 1, type: 'end', id: command.id, candles: 150, unavailable: [] },
    ]);
    const reports = (
      await readTopicTail(kafka, TOPICS.backfillStatus.name, {
        perPartition: 10_000,
        timeoutMs: 10_000,
      })
    )
      .map((m) => decodeBackfillReport(m.value ?? ''))
      .flatMap((d) => (d.ok && d.value.id === command.id ? [d.value] : []));
    expect(reports.length).toBeGreaterThanOrEqual(2);
    expect(reports.every((r) => r.reporter === 'producer' && r.status === 'fetching')).toBe(true);
    expect(reports[0]!.progress).toEqual({ done: 0, total: 150 });
    expect(reports.at(-1)).toMatchObject({ progress: { done: 150, total: 150 }, unavailable: [] });
  });

  it('regression: a job after an earlier job topic was deleted is still written (a shared publisher kept asking for the deleted topic and failed for good)', async () => {
    await producer();
    const first = await job([{ from: BASE_MS, to: BASE_MS + 30 * MINUTE_MS }]);
    await send(first);
    await waitUntil('first end', async () => (await lastType(first.topic)) === 'end', WAIT_MS);
    // What the coordinator does once a job has ended and its TTL passed.
    await deleteTopics(kafka, [first.topic]);
    const second = await job([{ from: BASE_MS + HOUR_MS, to: BASE_MS + HOUR_MS + 30 * MINUTE_MS }]);
    await send(second);
    await waitUntil('second end', async () => (await lastType(second.topic)) === 'end', WAIT_MS);
    expect(candlesOf(await records(second.topic))).toHaveLength(30);
  });

  it('regression: a command delivered again after a restart resumes after the last candle written and writes nothing twice', async () => {
    const ranges = [{ from: BASE_MS, to: BASE_MS + 3 * HOUR_MS }];
    const expected = expectedCandles(ranges);
    const command = await job(ranges);
    // What a producer killed midway left: the first 70 candles, no end, the command uncommitted.
    await publisher.send(
      command.topic,
      expected.slice(0, 70).map((bar) => ({
        key: BTC,
        value: encodeBackfillMessage(candleRecord(BTC, bar)),
      })),
    );
    await send(command);
    await producer();
    await waitUntil(
      'the end marker',
      async () => (await lastType(command.topic)) === 'end',
      WAIT_MS,
    );
    const first = await records(command.topic);
    expect(candlesOf(first)).toEqual(expected);
    expect(first.at(-1)).toEqual({
      v: 1,
      type: 'end',
      id: command.id,
      candles: 180,
      unavailable: [],
    });

    // Delivered again (another instance, its group never committed it; and once more on the
    // topic): the job's fetch is over, so nothing more is written.
    await producer();
    await send(command);
    const marker = await job([{ from: BASE_MS, to: BASE_MS + MINUTE_MS }]);
    await send(marker); // commands are handled in order per partition; this one ends later
    await waitUntil(
      'a later job ended',
      async () => (await lastType(marker.topic)) === 'end',
      WAIT_MS,
    );
    await new Promise((r) => setTimeout(r, 1_000)); // the other instance's redelivery, too
    expect(await records(command.topic)).toEqual(first);
  });

  it('keeps live trades flowing on tick-data while a long backfill runs', async () => {
    const p = await producer();
    await waitUntil('live', () => p.state().includes('live.streaming.healthy'), WAIT_MS);
    // Five days of minutes: about 4 million trades generated on the producer's thread.
    const ranges = [{ from: BASE_MS, to: BASE_MS + 5 * 24 * HOUR_MS }];
    const command = await job(ranges);
    await send(command);
    await waitUntil(
      'the first candles',
      async () => (await lastType(command.topic)) === 'candle',
      WAIT_MS,
    );
    const publishedAtStart = p.stats().published;
    await waitUntil(
      'the end marker',
      async () => (await lastType(command.topic)) === 'end',
      WAIT_MS,
    );
    // At 20 trades/s, the backfill's seconds carried live trades all along.
    expect(p.stats().published - publishedAtStart).toBeGreaterThan(10);
    expect(p.health().status).toBe('ok');
    expect(candlesOf(await records(command.topic))).toHaveLength(5 * 24 * 60);
  });

  it('a source that cannot fetch history (a file) ends the job with a failed record saying so', async () => {
    await producer(uniqueName('producer-backfill'), {
      backfillFetcher: {
        kind: 'file',
        reason: 'the producer reads a file, which cannot fetch history',
      },
    });
    const command = await job([{ from: BASE_MS, to: BASE_MS + HOUR_MS }]);
    await send(command);
    await waitUntil(
      'the failed marker',
      async () => (await lastType(command.topic)) === 'failed',
      WAIT_MS,
    );
    expect(await records(command.topic)).toEqual([
      {
        v: 1,
        type: 'failed',
        id: command.id,
        error: 'the producer reads a file, which cannot fetch history',
      },
    ]);
  });

  it('a range half beyond the minute history is written as hours, then minutes, the seam hour once, with one stored:1h entry', async () => {
    const fake = await startFakeCryptoCompare({ heartbeatIntervalMs: 0 });
    try {
      // Two pieces of 2,000 minutes: the first wholly beyond the minute history, the second
      // straddling its start at 50:30 (mid-hour) after the base.
      const range = {
        from: BASE_MS + 10 * MINUTE_MS,
        to: BASE_MS + 10 * MINUTE_MS + 4_000 * MINUTE_MS,
      };
      const historyStart = BASE_MS + 50 * HOUR_MS + 30 * MINUTE_MS;
      const cc = (fromMs: number, toMs: number, stepMs: number, level: number): CcCandle[] =>
        Array.from({ length: (toMs - fromMs) / stepMs }, (_, k) => {
          const open = level + (k % 53);
          const c = {
            open,
            high: open + 4,
            low: open - 2,
            close: open + 1,
            volumefrom: 1 + (k % 7),
          };
          return { time: (fromMs + k * stepMs) / SECOND_MS, ...c, volumeto: open };
        });
      const hours = cc(BASE_MS - 24 * HOUR_MS, BASE_MS + 96 * HOUR_MS, HOUR_MS, 30_000);
      const minutes = cc(BASE_MS, BASE_MS + 96 * HOUR_MS, MINUTE_MS, 31_000);
      fake.setCandles('hour', 'Coinbase', 'BTC', 'USD', hours);
      fake.setMinutes('Coinbase', 'BTC', 'USD', minutes);
      fake.setMinuteHistoryStart(historyStart / SECOND_MS);
      await producer(uniqueName('producer-backfill'), {
        backfillFetcher: cryptoCompareFetcher({ apiKey: 'test-api-key', restUrl: fake.restUrl }),
      });
      const command = await job([range]);
      await send(command);
      await waitUntil(
        'the end marker',
        async () => (await lastType(command.topic)) === 'end',
        WAIT_MS,
      );
      const written = await records(command.topic);
      const candles = candlesOf(written);
      const bar = (c: CcCandle, span?: '1h'): SpanBar => ({
        time: c.time * SECOND_MS,
        open: c.open,
        high: c.high,
        low: c.low,
        close: c.close,
        volume: c.volumefrom,
        ...(span ? { span } : {}),
      });
      const seamHourEnd = BASE_MS + 51 * HOUR_MS;
      // The hours from the one holding the range's start to the seam hour, each once (the
      // first piece's last hour was fetched by the second piece too), then the minutes after
      // the seam hour: the seam hour's minutes from 50:30 are not written.
      const expected = [
        ...hours
          .filter((c) => c.time * SECOND_MS >= BASE_MS && c.time * SECOND_MS < seamHourEnd)
          .map((c) => bar(c, '1h')),
        ...minutes
          .filter((c) => c.time * SECOND_MS >= seamHourEnd && c.time * SECOND_MS < range.to)
          .map((c) => bar(c)),
      ];
      expect(expected).toHaveLength(51 + 950);
      expect(candles).toEqual(expected);
      for (let i = 1; i < candles.length; i++) {
        expect(candles[i]!.time).toBeGreaterThanOrEqual(candleEnd(candles[i - 1]!));
      }
      expect(written.filter((r) => r.type !== 'candle')).toEqual([
        {
          v: 1,
          type: 'end',
          id: command.id,
          candles: expected.length,
          unavailable: [
            { from: range.from, to: seamHourEnd, reason: STORED_HOURS_REASON, stored: '1h' },
          ],
        },
      ]);
    } finally {
      await fake.close();
    }
  });
});
