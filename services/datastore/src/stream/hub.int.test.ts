import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BarUpdate, Interval, MarketSymbol, Tick } from '@candlestream/core';
import { AppError, LiveCandles, MINUTE_MS, coalesceUpdates, toIso } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientOptions } from 'ws';
import type { StreamHub, StreamOptions } from './hub.js';
import { attachStream } from './hub.js';
import type { StreamMessage } from './testing.js';
import {
  FakeFeed,
  RawClient,
  TestClient,
  barUpdate,
  captureLogger,
  waitUntil,
  within,
} from './testing.js';

const T0 = Date.UTC(2024, 0, 1, 12, 0);
const KNOWN = new Set(['BTC-USD', 'ETH-USD']);

interface Harness {
  server: Server;
  port: number;
  url: string;
  feed: FakeFeed;
  hub: StreamHub;
  dropped: string[];
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startHub(overrides: Partial<StreamOptions> = {}): Promise<Harness> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const feed = new FakeFeed();
  const dropped: string[] = [];
  const hub = attachStream({
    server,
    feed,
    logger: silentLogger(),
    isKnownSymbol: (symbol) => KNOWN.has(symbol),
    onMetrics: {
      clients: () => undefined,
      messagesSent: () => undefined,
      dropped: (r) => dropped.push(r),
    },
    ...overrides,
  });
  cleanups.push(async () => {
    await hub.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, port, url: `ws://127.0.0.1:${port}/stream`, feed, hub, dropped };
}

async function connect(url: string, options?: ClientOptions): Promise<TestClient> {
  const client = await TestClient.open(url, options);
  cleanups.push(() => client.close());
  return client;
}

/** Subscribes and waits for the acknowledgement; returns the index after it. */
async function subscribed(client: TestClient, symbol: string, interval: string): Promise<number> {
  const from = client.messages.length;
  client.subscribe(symbol, interval);
  return 1 + (await client.waitFor((m) => m.type === 'subscribed', from, 'subscribed'));
}

const closes = (messages: StreamMessage[]): number[] => messages.map((m) => m.bar?.close ?? NaN);

/** An HTTP upgrade request; answers status and body when the server refuses it. */
async function tryUpgrade(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      'Sec-WebSocket-Version': '13',
    };
    const req = request({ host: '127.0.0.1', port, path, headers });
    req.on('upgrade', (res: IncomingMessage, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('response', (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('/stream hub', () => {
  it('sends subscribed, then the current bar, then updates in order', async () => {
    const { url, feed } = await startHub();
    feed.setCurrent(barUpdate('BTC-USD', '1m', T0, 100));
    const client = await connect(url);
    const after = await subscribed(client, 'btcusd', '1');
    expect(client.messages[after - 1]).toEqual({
      type: 'subscribed',
      symbol: 'BTC-USD',
      interval: '1m',
    });
    await client.waitFor((m) => m.type === 'bar', after, 'the current bar');
    feed.push(barUpdate('BTC-USD', '1m', T0, 101), barUpdate('BTC-USD', '1m', T0, 102, true));
    feed.push(barUpdate('BTC-USD', '1m', T0 + MINUTE_MS, 103));
    await waitUntil(() => client.bars().length === 4, 'four bars');
    expect(closes(client.bars())).toEqual([100, 101, 102, 103]);
    expect(client.bars()[0]).toEqual({
      type: 'bar',
      symbol: 'BTC-USD',
      interval: '1m',
      bar: {
        time: '2024-01-01T12:00:00.000Z',
        open: 100,
        high: 100,
        low: 100,
        close: 100,
        volume: 1,
      },
      final: false,
    });
    expect(client.bars().map((m) => m.final)).toEqual([false, false, true, false]);
  });

  it('keeps updates that arrive while the current bar is fetched, and never goes back', async () => {
    const { url, feed } = await startHub();
    const release = feed.holdCurrent();
    const client = await connect(url);
    client.subscribe('BTC-USD', '1m');
    await waitUntil(() => feed.currentCalls.length === 1, 'the current-bar fetch');
    feed.push(barUpdate('BTC-USD', '1m', T0 - MINUTE_MS, 1, true)); // older than current: skipped
    feed.push(barUpdate('BTC-USD', '1m', T0, 2), barUpdate('BTC-USD', '1m', T0 + MINUTE_MS, 3));
    feed.setCurrent(barUpdate('BTC-USD', '1m', T0, 1.5));
    release();
    await waitUntil(() => client.bars().length >= 3, 'three bars');
    await client.sync();
    expect(closes(client.bars())).toEqual([1.5, 2, 3]);
  });

  it('never sends a bar older than the last one sent', async () => {
    const { url, feed } = await startHub();
    const client = await connect(url);
    await subscribed(client, 'BTC-USD', '5m');
    feed.push(barUpdate('BTC-USD', '5m', T0 + 5 * MINUTE_MS, 1));
    feed.push(barUpdate('BTC-USD', '5m', T0, 2)); // older: must not arrive
    feed.push(barUpdate('BTC-USD', '5m', T0 + 5 * MINUTE_MS, 3)); // same bar: an update
    await waitUntil(() => client.bars().some((m) => m.bar?.close === 3), 'the sentinel bar');
    expect(closes(client.bars())).toEqual([1, 3]);
  });

  it('skips a forming bar after the final of the same time', async () => {
    const { url, feed } = await startHub();
    const client = await connect(url);
    await subscribed(client, 'BTC-USD', '1m');
    feed.push(barUpdate('BTC-USD', '1m', T0, 1), barUpdate('BTC-USD', '1m', T0, 2, true));
    feed.push(barUpdate('BTC-USD', '1m', T0, 9)); // stale forming version
    feed.push(barUpdate('BTC-USD', '1m', T0, 2.5, true)); // corrected final: sent
    feed.push(barUpdate('BTC-USD', '1m', T0 + MINUTE_MS, 3));
    await waitUntil(() => client.bars().some((m) => m.bar?.close === 3), 'the sentinel bar');
    expect(closes(client.bars())).toEqual([1, 2, 2.5, 3]);
  });

  // Regression: a minute stays open for the allowed lateness, so its final reached the hub after
  // the next minute's forming bar and was dropped as older; no client ever got final: true.
  it('sends every closed bar once, final, in order, as the fixed consumer publishes them', async () => {
    const { url, feed } = await startHub();
    const client = await connect(url);
    await subscribed(client, 'BTC-USD', '1m');
    await subscribed(client, 'BTC-USD', '5m');
    const live = new LiveCandles({ allowedLatenessMs: 5_000 });
    const published: BarUpdate[] = [];
    // A trade every 10 s from 12:00 to 12:10:50, each a batch published as the pipeline does.
    for (let k = 0; k < 66; k++) {
      const price = 100 + k;
      const tick: Tick = {
        v: 1,
        symbol: 'BTC-USD' as MarketSymbol,
        ts: T0 + k * 10_000,
        price,
        size: 1,
        side: 'buy',
        id: `t${k}`,
        source: 'synthetic',
      };
      const updates = coalesceUpdates(live.add(tick).events);
      published.push(...updates);
      feed.push(...updates);
    }
    await client.sync();
    const finals = (interval: Interval): string[] =>
      published.filter((u) => u.interval === interval && u.final).map((u) => toIso(u.bar.time));
    const expected1m = finals('1m');
    const expected5m = finals('5m');
    expect(expected1m).toHaveLength(10);
    expect(expected5m).toEqual(['2024-01-01T12:00:00.000Z', '2024-01-01T12:05:00.000Z']);
    // The pipeline's order is the one that broke: the next bar forms before the final arrives.
    const firstFinal = published.findIndex((u) => u.interval === '1m' && u.final);
    expect(published.slice(0, firstFinal).some((u) => u.interval === '1m' && u.bar.time > T0)).toBe(
      true,
    );
    const received = (interval: Interval): string[] =>
      client
        .bars()
        .filter((m) => m.interval === interval && m.final)
        .map((m) => m.bar?.time ?? '');
    expect(received('1m')).toEqual(expected1m);
    expect(received('5m')).toEqual(expected5m);
    // Forming bars still never go back in time.
    for (const interval of ['1m', '5m'] as const) {
      const forming = client.bars().filter((m) => m.interval === interval && !m.final);
      const times = forming.map((m) => m.bar?.time ?? '');
      expect(times).toEqual([...times].sort());
    }
  });

  it('regression guard: finals a backfill publishes for old buckets do not reach subscribers as live bars', async () => {
    const { url, feed } = await startHub();
    const now = T0 + 30 * MINUTE_MS;
    feed.setCurrent(barUpdate('BTC-USD', '1m', now, 100));
    const client = await connect(url);
    await subscribed(client, 'BTC-USD', '1m');
    await client.waitFor((m) => m.type === 'bar', 0, 'the current bar');
    feed.push(barUpdate('BTC-USD', '1m', now + MINUTE_MS, 101));
    // A live final after the next bar formed (allowed lateness) still goes out...
    feed.push(barUpdate('BTC-USD', '1m', now, 102, true));
    // ...but the dynamic consumer's finals of backfilled history, older than all of it, do not.
    for (let m = 120; m >= 1; m--)
      feed.push(barUpdate('BTC-USD', '1m', T0 - m * MINUTE_MS, 50, true));
    feed.push(barUpdate('BTC-USD', '1m', now + MINUTE_MS, 103));
    await client.waitFor((m) => m.bar?.close === 103, 0, 'the live bar after the backfill');
    await client.sync();
    expect(closes(client.bars())).toEqual([100, 101, 102, 103]);
    expect(client.bars().some((m) => m.bar?.close === 50)).toBe(false);
  });

  it('tells the subscribers of a symbol, once each, that a backfill stored a range', async () => {
    const { url, feed } = await startHub();
    const both = await connect(url);
    await subscribed(both, 'BTC-USD', '1m');
    await subscribed(both, 'BTC-USD', '1h');
    const other = await connect(url);
    await subscribed(other, 'ETH-USD', '1m');
    const gone = await connect(url);
    await subscribed(gone, 'BTC-USD', '1m');
    gone.send({ type: 'unsubscribe', symbol: 'BTC-USD', interval: '1m' });
    await gone.waitFor((m) => m.type === 'unsubscribed', 0, 'unsubscribed');
    feed.pushHistory({
      symbol: 'BTC-USD' as MarketSymbol,
      backfill: { id: 'job-1', status: 'done' },
      from: T0 - 60 * MINUTE_MS,
      to: T0,
    });
    await both.waitFor((m) => m.type === 'history', 0, 'history');
    for (const client of [both, other, gone]) await client.sync();
    expect(both.messages.filter((m) => m.type === 'history')).toEqual([
      {
        type: 'history',
        symbol: 'BTC-USD',
        backfill: { id: 'job-1', status: 'done' },
        from: '2024-01-01T11:00:00.000Z',
        to: '2024-01-01T12:00:00.000Z',
      },
    ]);
    expect(other.messages.some((m) => m.type === 'history')).toBe(false);
    expect(gone.messages.some((m) => m.type === 'history')).toBe(false);
  });

  it('stops updates after unsubscribe', async () => {
    const { url, feed } = await startHub();
    const client = await connect(url);
    await subscribed(client, 'BTC-USD', '1m');
    await subscribed(client, 'ETH-USD', '1m');
    feed.push(barUpdate('BTC-USD', '1m', T0, 1));
    await waitUntil(() => client.bars().length === 1, 'the first bar');
    const from = client.messages.length;
    client.send({ type: 'unsubscribe', symbol: 'BTC/USD', interval: '1m' });
    await client.waitFor((m) => m.type === 'unsubscribed' && m.symbol === 'BTC-USD', from);
    feed.push(barUpdate('BTC-USD', '1m', T0 + MINUTE_MS, 2));
    feed.push(barUpdate('ETH-USD', '1m', T0, 50)); // sentinel on the other series
    await waitUntil(() => client.bars('ETH-USD').length === 1, 'the ETH bar');
    expect(closes(client.bars('BTC-USD'))).toEqual([1]);
  });

  it('keeps clients and series apart', async () => {
    const { url, feed } = await startHub();
    const [a, b] = [await connect(url), await connect(url)];
    await subscribed(a, 'BTC-USD', '1m');
    await subscribed(b, 'ETH-USD', '5m');
    await subscribed(b, 'BTC-USD', '1h');
    feed.push(barUpdate('BTC-USD', '1m', T0, 1), barUpdate('ETH-USD', '5m', T0, 2));
    feed.push(barUpdate('BTC-USD', '1h', T0, 3), barUpdate('ETH-USD', '1m', T0, 4));
    feed.push(barUpdate('BTC-USD', '1m', T0, 5), barUpdate('ETH-USD', '5m', T0, 6));
    await waitUntil(() => a.bars().length === 2 && b.bars().length === 3, 'every bar');
    await Promise.all([a.sync(), b.sync()]);
    expect(a.bars().map((m) => [m.symbol, m.interval, m.bar?.close])).toEqual([
      ['BTC-USD', '1m', 1],
      ['BTC-USD', '1m', 5],
    ]);
    expect(b.bars().map((m) => [m.symbol, m.interval, m.bar?.close])).toEqual([
      ['ETH-USD', '5m', 2],
      ['BTC-USD', '1h', 3],
      ['ETH-USD', '5m', 6],
    ]);
  });

  it('answers bad messages with an error and keeps the socket open', async () => {
    const { url } = await startHub({ maxSubscriptionsPerClient: 1 });
    const client = await connect(url);
    const errorAfter = async (send: () => void): Promise<string> => {
      const from = client.messages.length;
      send();
      const at = await client.waitFor((m) => m.type === 'error', from, 'an error');
      return client.messages[at]?.error ?? '';
    };
    expect(await errorAfter(() => client.ws.send('not json'))).toMatch(/invalid JSON/);
    expect(await errorAfter(() => client.ws.send(Buffer.from([1, 2]), { binary: true }))).toMatch(
      /binary/,
    );
    expect(await errorAfter(() => client.send([1]))).toMatch(/JSON object/);
    expect(await errorAfter(() => client.send({ type: 'nope' }))).toMatch(/type "nope"/);
    expect(await errorAfter(() => client.subscribe('BTC-USD', '2m'))).toMatch(/interval "2m"/);
    expect(await errorAfter(() => client.subscribe('BTC', '1m'))).toMatch(/symbol "BTC"/);
    expect(await errorAfter(() => client.subscribe('XYZ-USD', '1m'))).toBe(
      'unknown symbol XYZ-USD',
    );
    await subscribed(client, 'BTC-USD', '1m');
    expect(await errorAfter(() => client.subscribe('ETH-USD', '1m'))).toMatch(/at most 1/);
    await client.sync();
    expect(client.isOpen()).toBe(true);
  });

  it('closes the socket with 1009 on a frame over maxFrameBytes', async () => {
    const { url, hub } = await startHub({ maxFrameBytes: 1_024 });
    const client = await connect(url);
    client.send({ type: 'ping', padding: 'x'.repeat(900) }); // under the limit: fine
    await client.waitFor((m) => m.type === 'pong');
    client.send({ type: 'ping', padding: 'x'.repeat(2_000) });
    expect(await client.waitClosed()).toBe(1009);
    await waitUntil(() => hub.clientCount() === 0, 'the hub to forget the client');
  });

  it('drops a client that stops reading (1013) without holding up the others', async () => {
    const { logger, lines } = captureLogger();
    const { port, url, feed, hub, dropped } = await startHub({
      maxBufferedBytes: 64 * 1024,
      logger,
    });
    const reader = await connect(url);
    await subscribed(reader, 'BTC-USD', '1m');
    const stalled = await RawClient.open(port, '/stream');
    cleanups.push(() => {
      stalled.socket.destroy();
    });
    stalled.sendText(JSON.stringify({ type: 'subscribe', symbol: 'BTC-USD', interval: '1m' }));
    await waitUntil(() => stalled.text().includes('"type":"subscribed"'), 'raw subscribed');
    stalled.socket.pause();
    let close = 1;
    for (let batch = 0; batch < 2_000 && dropped.length === 0; batch++) {
      for (let i = 0; i < 100; i++) feed.push(barUpdate('BTC-USD', '1m', T0, close++));
      await new Promise((resolve) => setImmediate(resolve)); // lets the reader read
    }
    expect(dropped).toEqual(['slow']);
    stalled.socket.resume();
    const closeFrame = Buffer.concat([
      Buffer.from([0x88, 10, 0x03, 0xf5]),
      Buffer.from('too slow'),
    ]);
    await waitUntil(() => stalled.tail(closeFrame.length).equals(closeFrame), 'close frame 1013');
    stalled.socket.destroy();
    await waitUntil(() => hub.clientCount() === 1, 'the stalled client gone');
    feed.push(barUpdate('BTC-USD', '1m', T0 + MINUTE_MS, -1));
    await waitUntil(() => reader.bars().at(-1)?.bar?.close === -1, 'the reader to get everything');
    expect(reader.bars()).toHaveLength(close);
    expect(reader.isOpen()).toBe(true);
    const warnings = lines.filter((line) => line['level'] === 'warn');
    expect(warnings).toEqual([
      expect.objectContaining({ component: 'stream', msg: 'client dropped: slow' }),
    ]);
  });

  it('sends heartbeats with pings and ends a client that stops answering them', async () => {
    const { url, hub, dropped } = await startHub({ heartbeatIntervalMs: 30 });
    const live = await connect(url);
    const silent = await connect(url, { autoPong: false });
    const at = await live.waitFor((m) => m.type === 'heartbeat');
    expect(Date.parse(live.messages[at]?.time ?? '')).toBeGreaterThan(T0);
    expect(live.messages[at]?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await waitUntil(() => live.pings > 0, 'a ping');
    expect(await silent.waitClosed()).toBe(1006);
    expect(dropped).toEqual(['heartbeat']);
    await waitUntil(() => hub.clientCount() === 1, 'the hub to forget the silent client');
    const count = live.messages.length;
    await live.waitFor((m) => m.type === 'heartbeat', count, 'more heartbeats');
    expect(live.isOpen()).toBe(true);
  });

  it('refuses the upgrade when authenticate throws', async () => {
    const { port } = await startHub({
      authenticate: async (req) => {
        await Promise.resolve();
        if (req.url?.includes('boom')) throw new Error('database down');
        if (!req.url?.endsWith('?token=good')) {
          throw new AppError('UNAUTHENTICATED', 'missing or invalid token');
        }
      },
    });
    const refused = await tryUpgrade(port, '/stream?token=bad');
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toEqual({ error: 'missing or invalid token' });
    expect(await tryUpgrade(port, '/stream?boom')).toEqual({
      status: 500,
      body: JSON.stringify({ error: 'internal error' }),
    });
    expect((await tryUpgrade(port, '/elsewhere')).status).toBe(404);
    expect((await tryUpgrade(port, '/stream?token=good')).status).toBe(101);
  });

  it('close() closes every client with 1001 and leaves nothing running', async () => {
    const timers = (): number =>
      process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const { server, url, feed, hub } = await startHub({ heartbeatIntervalMs: 60_000 });
    expect(timers()).toBe(before + 1);
    expect(feed.listenerCount()).toBe(1);
    const clients = [await connect(url), await connect(url)];
    for (const client of clients) await subscribed(client, 'BTC-USD', '1m');
    const closing = hub.close();
    expect(hub.close()).toBe(closing);
    await within(closing, 'close()');
    expect(await Promise.all(clients.map((c) => c.waitClosed()))).toEqual([1001, 1001]);
    expect(hub.clientCount()).toBe(0);
    expect(feed.listenerCount()).toBe(0);
    expect(server.listenerCount('upgrade')).toBe(0);
    // server.close() calls back only once every socket, upgraded ones included, is gone.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(timers()).toBe(before);
    await hub.close();
  });
});
