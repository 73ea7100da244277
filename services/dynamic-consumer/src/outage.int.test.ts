/**
 * A database that goes away in the middle of a job: the batch is retried with backoff inside
 * the job (never failed, never skipped), /health is degraded naming the database meanwhile, and
 * the job completes once the database answers again.
 */
import { MINUTE_MS } from '@candlestream/core';
import { needServices, waitUntil } from '@candlestream/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { DynamicConsumer } from './service.js';
import type { CuttableProxy, Fixture } from './testing.js';
import {
  BTC,
  candleRecords,
  candles,
  committedRecords,
  createJob,
  endRecord,
  reportsOf,
  sendCommand,
  startCuttableProxy,
  startInfra,
  startService,
  storedMinutes,
  T0,
  writeRecords,
} from './testing.js';

const services = needServices(['postgres']);
const WAIT_MS = 30_000;

let f: Fixture | undefined;
let proxy: CuttableProxy | undefined;
let consumer: DynamicConsumer | undefined;

afterEach(async () => {
  proxy?.restore();
  await consumer?.stop();
  await proxy?.close();
  await f?.close();
  f = proxy = consumer = undefined;
});

describe.skipIf(services.skip)('dynamic consumer, database outage', () => {
  it('retries a job batch while the database is away (degraded), then stores it and ends the job', async () => {
    const fx = (f = await startInfra(services.get('postgres').url));
    const cut = (proxy = await startCuttableProxy(fx.db.url));
    const service = (consumer = await startService(
      fx,
      { dbTimeouts: { connectTimeoutMs: 1_000, acquireTimeoutMs: 2_000 } },
      cut.via(fx.db.url),
    ));
    await waitUntil('consuming', () => service.state().startsWith('consuming'), WAIT_MS);

    cut.cut();
    const bars = candles(T0, 5, 5);
    const command = await createJob(fx, [{ from: T0, to: T0 + 5 * MINUTE_MS }]);
    await writeRecords(fx, command, [...candleRecords(BTC, bars), endRecord(command, 5)]);
    await sendCommand(fx, command);
    await waitUntil(
      'degraded on the database',
      () =>
        service.health().status === 'degraded' &&
        'database' in (service.health().checks['problems'] as object),
      WAIT_MS,
    );
    expect(reportsOf(fx, command.id).some((r) => r.status === 'done')).toBe(false);
    expect(await committedRecords(fx.kafka, fx.groupId, fx.topics.commands.name)).toBe(0);

    cut.restore();
    await waitUntil(
      'the done report',
      () => reportsOf(fx, command.id).some((r) => r.status === 'done'),
      WAIT_MS,
    );
    expect(await storedMinutes(fx)).toEqual(
      bars.map((b) => ({ ...b, origin: 'candles', source: 'backfill' })),
    );
    await waitUntil('healthy again', () => service.health().status === 'ok', WAIT_MS);
  });
});
