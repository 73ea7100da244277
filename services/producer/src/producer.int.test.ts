/**
 * The producer service wired from its configuration: CryptoCompare (a local fake) into the
 * embedded broker, and what /health says when the upstream or the key is bad.
 */
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type { Tick } from '@candlestream/core';
import { decodeTick } from '@candlestream/core';
import { BatchConsumer, createKafka, TOPICS } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { needServices, uniqueName } from '@candlestream/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadProducerConfig } from './config.js';
import type { Producer } from './service.js';
import { startProducer } from './service.js';
import type { FakeCryptoCompare } from './sources/cryptocompare-fake.js';
import { startFakeCryptoCompare } from './sources/cryptocompare-fake.js';

const services = needServices(['kafka']);
const API_KEY = 'test-key-0123456789';

describe.skipIf(services.skip)('producer service with the CryptoCompare source', () => {
  let broker: RunningBroker;
  let fake: FakeCryptoCompare;
  let producer: Producer | undefined;
  let consumer: BatchConsumer | undefined;

  beforeEach(async () => {
    broker = await startBroker({ port: 0 });
    fake = await startFakeCryptoCompare({ apiKey: API_KEY, replayTrades: 5 });
  });
  afterEach(async () => {
    await producer?.stop();
    await consumer?.stop();
    await fake.close();
    await broker.stop();
  });

  function env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      KAFKA_BROKERS: broker.brokers,
      SYMBOLS: 'btcusd,ETH/USD',
      CRYPTOCOMPARE_API_KEY: API_KEY,
      CRYPTOCOMPARE_WS_URL: fake.wsUrl,
      CRYPTOCOMPARE_REST_URL: fake.restUrl,
      HEALTH_PORT: '0',
      ...extra,
    };
  }

  it('publishes upstream trades to tick-data, keyed by symbol', async () => {
    producer = await startProducer(loadProducerConfig(env()), silentLogger());
    await expect
      .poll(() => producer!.state(), { timeout: 10_000 })
      .toBe('live.streaming.healthy,backfill.running.healthy');
    const received: { key: string; tick: Tick }[] = [];
    consumer = new BatchConsumer(
      createKafka({ brokers: [broker.brokers], clientId: 't', logger: silentLogger() }),
      {
        groupId: uniqueName('g'),
        topics: [TOPICS.ticks.name],
      },
    );
    await consumer.start((batch) => {
      for (const m of batch.messages) {
        const decoded = decodeTick(m.value ?? '');
        if (decoded.ok) received.push({ key: m.key?.toString() ?? '', tick: decoded.value });
      }
      return Promise.resolve();
    });
    await expect.poll(() => fake.subscriptions.length, { timeout: 10_000 }).toBeGreaterThan(0);
    const now = Date.now();
    fake.pushTrade({ base: 'BTC', quote: 'USD', id: 1, tsMs: now, price: 37_000.5, size: 0.25 });
    fake.pushTrade({
      base: 'ETH',
      quote: 'USD',
      id: 2,
      tsMs: now + 1,
      price: 2_000.25,
      size: 3,
      flags: 1,
    });
    await expect.poll(() => received.length, { timeout: 10_000 }).toBe(2);
    // Two symbols, two partitions: arrival order between them is not defined.
    received.sort((a, b) => a.key.localeCompare(b.key));
    expect(
      received.map((r) => [r.key, r.tick.symbol, r.tick.price, r.tick.side, r.tick.source]),
    ).toEqual([
      ['BTC-USD', 'BTC-USD', 37_000.5, 'buy', 'cryptocompare'],
      ['ETH-USD', 'ETH-USD', 2_000.25, 'sell', 'cryptocompare'],
    ]);
    expect(producer.health()).toMatchObject({
      status: 'ok',
      state: 'live.streaming.healthy,backfill.running.healthy',
      checks: { source: 'cryptocompare' },
    });

    const ops = `http://127.0.0.1:${producer.opsPort}`;
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    expect(metrics).toContain('candlestream_producer_trades_published_total 2');
  });

  it('a refused API key leaves it failed with the reason on /health, not retrying forever', async () => {
    producer = await startProducer(
      loadProducerConfig(env({ CRYPTOCOMPARE_API_KEY: 'wrong-key-0123456789' })),
      silentLogger(),
    );
    await expect.poll(() => producer!.state(), { timeout: 10_000 }).toMatch(/^live\.failed,/);
    const response = await fetch(`http://127.0.0.1:${producer.opsPort}/health`);
    expect(response.status).toBe(503);
    const body = (await response.json()) as { status: string; checks: { lastError?: string } };
    expect(body.status).toBe('down');
    expect(body.checks.lastError).toMatch(/key|auth/i);
  });
});
