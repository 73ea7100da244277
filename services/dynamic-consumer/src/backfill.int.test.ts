import { candleRecord, floorBucket, INTERVAL_MS, MINUTE_MS, rollupBars } from '@candlestream/core';
import { makeTick } from '@candlestream/core/testing';
import { Repository } from '@candlestream/db';
import { DLQ_HEADERS } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { needServices, waitUntil } from '@candlestream/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DynamicConsumer } from './service.js';
import type { Fixture } from './testing.js';
import {
  at,
  BTC,
  candleRecords,
  candles,
  committedRecords,
  createJob,
  endRecord,
  finals,
  reportsOf,
  sendCommand,
  startInfra,
  startService,
  storedMinutes,
  T0,
  writeRecords,
} from './testing.js';

const services = needServices(['postgres']);
const WAIT_MS = 30_000;
const HOUR_MS = 60 * MINUTE_MS;

describe.skipIf(services.skip)('dynamic consumer (embedded broker, PostgreSQL)', () => {
  let f: Fixture;
  let consumer: DynamicConsumer;
  let repository: Repository;

  beforeAll(async () => {
    f = await startInfra(services.get('postgres').url);
    repository = new Repository({ url: f.db.url, logger: silentLogger() });
    consumer = await startService(f);
  });

  afterAll(async () => {
    await consumer?.stop();
    await repository?.close();
    await f?.close();
  });

  const done = (id: string) => () => reportsOf(f, id).some((r) => r.status === 'done');

  it('stores a job into bars_1m (a minute with trades keeps its bar), publishes finals, reports storing then done, and commits the command only after the end', async () => {
    const from = T0;
    const bars = candles(from, 10);
    // Minute 2 already has a trade: its tick-derived bar wins over the imported candle.
    const tradeMinute = from + 2 * MINUTE_MS;
    await repository.insertTrades([
      makeTick({ symbol: BTC, ts: tradeMinute + 5_000, price: 39_000, size: 0.5 }),
    ]);
    const command = await createJob(f, [{ from, to: from + 10 * MINUTE_MS }]);
    await writeRecords(f, command, candleRecords(BTC, bars));
    await sendCommand(f, command);

    await waitUntil(
      'the candles stored',
      async () => (await storedMinutes(f)).filter((m) => m.origin === 'candles').length === 9,
      WAIT_MS,
    );
    await waitUntil(
      'a storing report',
      () => reportsOf(f, command.id).some((r) => r.status === 'storing'),
      WAIT_MS,
    );
    // Its job has not ended: the command is not committed.
    expect(await committedRecords(f.kafka, f.groupId, f.topics.commands.name)).toBe(0);
    expect(consumer.health().checks['jobs']).toEqual([
      expect.objectContaining({ id: command.id, total: 10 }),
    ]);

    const unavailable = [{ from: from + 10 * MINUTE_MS, to: from + 11 * MINUTE_MS, reason: 'x' }];
    await writeRecords(f, command, [endRecord(command, 10, unavailable)]);
    await waitUntil('the done report', done(command.id), WAIT_MS);
    await waitUntil(
      'the command committed',
      async () => (await committedRecords(f.kafka, f.groupId, f.topics.commands.name)) === 1,
      WAIT_MS,
    );

    const stored = await storedMinutes(f);
    expect(stored).toHaveLength(10);
    for (const bar of bars) {
      const row = at(stored, bar.time)!;
      if (bar.time === tradeMinute) {
        expect(row).toMatchObject({ origin: 'ticks', open: 39_000, close: 39_000, volume: 0.5 });
      } else {
        expect(row).toEqual({ ...bar, origin: 'candles', source: 'backfill' });
      }
    }

    const reports = reportsOf(f, command.id);
    expect(reports[0]).toMatchObject({ status: 'storing', progress: { total: 10 } });
    expect(reports.at(-1)).toMatchObject({
      status: 'done',
      symbol: BTC,
      progress: { done: 10, total: 10 },
      unavailable,
    });
    expect(reports.filter((r) => r.status === 'done')).toHaveLength(1);

    await waitUntil('the 1h final', () => finals(f).some((u) => u.interval === '1h'), WAIT_MS);
    const updates = finals(f);
    expect(updates.every((u) => u.final && u.symbol === BTC)).toBe(true);
    // 1m: the nine candles, not the minute whose trades kept their bar.
    const minutes = updates.filter((u) => u.interval === '1m').map((u) => u.bar);
    expect(minutes.map((b) => b.time).sort((a, b) => a - b)).toEqual(
      bars.filter((b) => b.time !== tradeMinute).map((b) => b.time),
    );
    expect(at(minutes, from)).toEqual(bars[0]);
    // Higher intervals: the buckets the candles are in, as storage rolls them up.
    for (const interval of ['5m', '15m', '1h', '4h', '1d', '1w'] as const) {
      const expected = await repository.readBars(
        BTC,
        interval,
        floorBucket(from, interval),
        from + HOUR_MS,
      );
      const announced = updates.filter((u) => u.interval === interval).map((u) => u.bar);
      expect(announced.length, interval).toBeGreaterThan(0);
      for (const bar of announced) expect(bar, interval).toEqual(at(expected, bar.time));
    }
    // The 5m bucket holding the trade minute carries the trade's low, not the candle's.
    expect(
      at(
        updates.filter((u) => u.interval === '5m').map((u) => u.bar),
        from,
      )?.low,
    ).toBe(39_000);
  });

  it('stores hour candles where the source had no minutes, then the minutes after them: each interval answers from what it can, finals go out at 1h and above for the hours', async () => {
    const from = T0 - 10 * 24 * HOUR_MS; // a day no other case writes
    const hours = candles(from, 2, 7).map((b, i) => ({ ...b, time: from + i * HOUR_MS }));
    const minutes = candles(from + 2 * HOUR_MS, 10, 8);
    const command = await createJob(f, [{ from, to: from + 2 * HOUR_MS + 10 * MINUTE_MS }]);
    const unavailable = [
      { from, to: from + 2 * HOUR_MS, reason: 'minutes beyond history', stored: '1h' as const },
    ];
    await writeRecords(f, command, [
      ...hours.map((b) => candleRecord(BTC, { ...b, span: '1h' })),
      ...candleRecords(BTC, minutes),
      endRecord(command, 12, unavailable),
    ]);
    await sendCommand(f, command);
    await waitUntil('the done report', done(command.id), WAIT_MS);

    const to = from + 3 * HOUR_MS;
    expect(await repository.readBars(BTC, '1m', from, to)).toEqual(minutes);
    expect(await repository.readBars(BTC, '5m', from, to)).toEqual(rollupBars(minutes, '1m', '5m'));
    const expectedHours = [...hours, ...rollupBars(minutes, '1m', '1h')];
    expect(await repository.readBars(BTC, '1h', from, to)).toEqual(expectedHours);
    const day = floorBucket(from, '1d');
    expect(await repository.readBars(BTC, '1d', day, day + 24 * HOUR_MS)).toEqual(
      rollupBars(expectedHours, '1h', '1d'),
    );
    expect(reportsOf(f, command.id).at(-1)).toMatchObject({
      status: 'done',
      progress: { done: 130, total: 130 },
      unavailable,
    });
    await waitUntil(
      'the finals of the hours',
      () => finals(f).filter((u) => u.interval === '1h' && u.bar.time === from).length > 0,
      WAIT_MS,
    );
    const mine = finals(f).filter((u) => u.bar.time >= from && u.bar.time < to);
    expect(mine.find((u) => u.interval === '1h' && u.bar.time === from)?.bar).toEqual(hours[0]);
    // No 1m, 5m or 15m bar is announced inside the hours: there are none there.
    expect(
      mine.filter((u) => INTERVAL_MS[u.interval] < HOUR_MS && u.bar.time < from + 2 * HOUR_MS),
    ).toEqual([]);
  });

  it('the same job delivered twice stores nothing twice: repeated candles and a repeated command', async () => {
    const from = T0 + 2 * HOUR_MS;
    const bars = candles(from, 5, 2);
    const command = await createJob(f, [{ from, to: from + 5 * MINUTE_MS }]);
    // The producer resumed after a crash and wrote the first candles again.
    await writeRecords(f, command, candleRecords(BTC, bars.slice(0, 3)));
    await writeRecords(f, command, candleRecords(BTC, bars));
    await writeRecords(f, command, [endRecord(command, 8)]);
    await sendCommand(f, command);
    await waitUntil('the done report', done(command.id), WAIT_MS);
    const first = (await storedMinutes(f)).filter((m) => m.time >= from);
    expect(first).toEqual(bars.map((b) => ({ ...b, origin: 'candles', source: 'backfill' })));
    // Progress counts minutes received, capped at the job's.
    expect(reportsOf(f, command.id).at(-1)?.progress).toEqual({ done: 5, total: 5 });

    // The coordinator sends the command again (its restart): the job's group is at its end, so
    // it is reported done again without storing anything.
    const before = f.barUpdates.messages.length;
    await sendCommand(f, command);
    await waitUntil(
      'a second done report',
      () => reportsOf(f, command.id).filter((r) => r.status === 'done').length === 2,
      WAIT_MS,
    );
    expect((await storedMinutes(f)).filter((m) => m.time >= from)).toEqual(first);
    expect(f.barUpdates.messages.length).toBe(before);
    expect(reportsOf(f, command.id).at(-1)).toMatchObject({
      status: 'done',
      progress: { done: 5, total: 5 },
    });
  });

  it('a malformed record goes to the DLQ with its reason and source, and the job still completes', async () => {
    const from = T0 + 4 * HOUR_MS;
    const bars = candles(from, 3, 3);
    const command = await createJob(f, [{ from, to: from + 3 * MINUTE_MS }]);
    const [good1, good2, good3] = candleRecords(BTC, bars);
    await writeRecords(f, command, [
      good1!,
      'not json at all',
      { ...good2!, symbol: 'ETH-USD' } as typeof good2 & object,
      { ...good2!, time: bars[1]!.time + 30_000 } as typeof good2 & object,
      good2!,
      { ...good3!, high: 1 } as typeof good3 & object,
      good3!,
      endRecord(command, 3),
    ]);
    await sendCommand(f, command);
    await waitUntil('the done report', done(command.id), WAIT_MS);
    await waitUntil('four dead letters', () => f.dlq.messages.length >= 4, WAIT_MS);

    expect((await storedMinutes(f)).filter((m) => m.time >= from)).toEqual(
      bars.map((b) => ({ ...b, origin: 'candles', source: 'backfill' })),
    );
    const dead = f.dlq.messages.filter((m) => m.headers[DLQ_HEADERS.topic] === command.topic);
    expect(dead.map((m) => m.headers[DLQ_HEADERS.offset])).toEqual(['1', '2', '3', '5']);
    expect(dead[0]!.value?.toString()).toBe('not json at all');
    for (const m of dead) {
      expect(m.headers[DLQ_HEADERS.partition]).toBe('0');
      expect(m.headers[DLQ_HEADERS.reason]).toBeTruthy();
      expect(Date.parse(m.headers[DLQ_HEADERS.failedAt]!)).not.toBeNaN();
    }
    expect(dead[1]!.headers[DLQ_HEADERS.reason]).toContain('ETH-USD');
    expect(dead[2]!.headers[DLQ_HEADERS.reason]).toContain('minute');
  });

  it('a command whose topic is gone is skipped, and a failed marker is reported as failed', async () => {
    const gone = await createJob(f, [{ from: T0, to: T0 + MINUTE_MS }]);
    const admin = f.kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [gone.topic] });
    await admin.disconnect();

    const from = T0 + 6 * HOUR_MS;
    const failing = await createJob(f, [{ from, to: from + 5 * MINUTE_MS }]);
    await writeRecords(f, failing, [
      ...candleRecords(BTC, candles(from, 2, 4)),
      { v: 1, type: 'failed', id: failing.id, error: 'source refused: 429' },
    ]);
    const committed = await committedRecords(f.kafka, f.groupId, f.topics.commands.name);
    await sendCommand(f, gone);
    await sendCommand(f, failing);
    await waitUntil(
      'the failed report',
      () => reportsOf(f, failing.id).some((r) => r.status === 'failed'),
      WAIT_MS,
    );
    expect(reportsOf(f, failing.id).at(-1)).toMatchObject({
      status: 'failed',
      error: 'source refused: 429',
      progress: { done: 2, total: 5 },
    });
    expect(reportsOf(f, gone.id)).toEqual([]);
    await waitUntil(
      'both commands committed',
      async () =>
        (await committedRecords(f.kafka, f.groupId, f.topics.commands.name)) === committed + 2,
      WAIT_MS,
    );
    expect((await storedMinutes(f)).filter((m) => m.time >= from)).toHaveLength(2);
    expect(consumer.health()).toMatchObject({ status: 'ok', checks: { jobs: [] } });
  });
});
