import type { EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import { AppError, SimulatedClock } from '@candlestream/core';
import type { LogFields, Logger } from '@candlestream/logger';
import { silentLogger } from '@candlestream/logger';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FakeCryptoCompare, FakeTrade } from './cryptocompare-fake.js';
import { startFakeCryptoCompare } from './cryptocompare-fake.js';
import type { CcMinuteCandle } from './cryptocompare-rest.js';
import { candleToTrades } from './cryptocompare-rest.js';
import type { CryptoCompareWsOptions, CryptoCompareWsSource } from './cryptocompare-ws.js';
import { MIN_RECONNECT_DELAY_MS, createCryptoCompareWsSource } from './cryptocompare-ws.js';
import type { SourceStatus } from './source.js';

const BTC_USD = 'BTC-USD' as MarketSymbol;
const ETH_USD = 'ETH-USD' as MarketSymbol;
const API_KEY = 'test-api-key';
/** 2024-01-01T12:00:00Z, a whole minute. */
const BASE_MS = Date.UTC(2024, 0, 1, 12, 0);
const MINUTE_MS = 60_000;
const WAIT = { timeout: 5_000, interval: 5 };

let fake: FakeCryptoCompare;
const runs: Consumer[] = [];

beforeEach(async () => {
  fake = await startFakeCryptoCompare({ apiKey: API_KEY });
});

afterEach(async () => {
  for (const run of runs.splice(0)) {
    run.controller.abort();
    await run.result;
  }
  await fake.close();
});

function source(options: Partial<CryptoCompareWsOptions> = {}): CryptoCompareWsSource {
  return createCryptoCompareWsSource({
    apiKey: API_KEY,
    symbols: [BTC_USD],
    wsUrl: fake.wsUrl,
    restUrl: fake.restUrl,
    logger: silentLogger(),
    heartbeatTimeoutMs: 10_000,
    backoff: { initialDelayMs: 10, maxDelayMs: 100, jitter: 0 },
    // Production waits at least 5 s between connects; the test that checks that sets it back.
    minReconnectDelayMs: 0,
    gapFillRetry: { backoff: { initialDelayMs: 1, maxDelayMs: 1, jitter: 0 } },
    ...options,
  });
}

interface Consumer {
  ticks: Tick[];
  statuses: SourceStatus[];
  controller: AbortController;
  /** Resolves when the iterable ends: undefined, or what it threw. */
  result: Promise<unknown>;
}

function consume(src: CryptoCompareWsSource, resumeFrom?: Map<MarketSymbol, EpochMs>): Consumer {
  const controller = new AbortController();
  const ticks: Tick[] = [];
  const statuses: SourceStatus[] = [];
  const iterable = src.trades({
    signal: controller.signal,
    onStatus: (s) => statuses.push(s),
    ...(resumeFrom ? { resumeFrom } : {}),
  });
  const result = (async () => {
    for await (const tick of iterable) ticks.push(tick);
  })().then(
    () => undefined,
    (err: unknown) => err,
  );
  const run = { ticks, statuses, controller, result };
  runs.push(run);
  return run;
}

function trade(id: number, tsMs: EpochMs, extra: Partial<FakeTrade> = {}): FakeTrade {
  return {
    base: 'BTC',
    quote: 'USD',
    id,
    tsMs,
    price: 40_000 + id,
    size: 0.5 + id / 100,
    ...extra,
  };
}

/** The tick the source must make of a fake trade (flags 2 = buy). */
function tickOf(t: FakeTrade): Tick {
  return {
    v: 1,
    symbol: `${t.base}-${t.quote}` as MarketSymbol,
    ts: t.tsMs,
    price: t.price,
    size: t.size,
    side: 'buy',
    id: `Coinbase:${t.id}`,
    source: 'cryptocompare',
  };
}

function minute(k: number, fields: Partial<CcMinuteCandle> = {}): CcMinuteCandle {
  const open = 40_000 + k;
  return {
    time: (BASE_MS + k * MINUTE_MS) / 1000,
    open,
    high: open + 7,
    low: open - 3,
    close: open + 2,
    volumefrom: 1.25 + k,
    volumeto: (1.25 + k) * open,
    ...fields,
  };
}

function recordingLogger(): Logger & {
  lines: { level: string; msg: string; fields: LogFields }[];
} {
  const lines: { level: string; msg: string; fields: LogFields }[] = [];
  const make = (bound: LogFields): Logger => {
    const at =
      (level: string) =>
      (msg: string, fields: LogFields = {}): void => {
        lines.push({ level, msg, fields: { ...bound, ...fields } });
      };
    return {
      error: at('error'),
      warn: at('warn'),
      info: at('info'),
      debug: at('debug'),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return Object.assign(make({}), { lines });
}

describe('CryptoCompare WebSocket source', () => {
  it('subscribes to the trade channels and maps trades to ticks', async () => {
    const src = source({ symbols: [BTC_USD, ETH_USD] });
    const run = consume(src);
    await vi.waitFor(() => expect(run.statuses).toContainEqual({ state: 'connected' }), WAIT);
    expect(fake.subscriptions).toEqual(['0~Coinbase~BTC~USD', '0~Coinbase~ETH~USD']);

    fake.pushTrade({ ...trade(1, BASE_MS + 1_234), flags: 1 });
    fake.pushTrade({
      base: 'ETH',
      quote: 'USD',
      id: 'e-9',
      tsMs: BASE_MS + 2_000,
      price: 2_250.5,
      size: 3,
      flags: 4,
    });
    fake.pushTrade({ ...trade(2, BASE_MS + 5_678), withNanos: false });
    await vi.waitFor(() => expect(run.ticks).toHaveLength(3), WAIT);
    expect(run.ticks).toEqual([
      { ...tickOf(trade(1, BASE_MS + 1_234)), side: 'sell' },
      {
        v: 1,
        symbol: 'ETH-USD',
        ts: BASE_MS + 2_000,
        price: 2_250.5,
        size: 3,
        side: 'unknown',
        id: 'Coinbase:e-9',
        source: 'cryptocompare',
      },
      { ...tickOf(trade(2, BASE_MS + 5_678)), ts: BASE_MS + 5_000 }, // TS is whole seconds
    ]);
  });

  it('drops the trades re-sent after a reconnect', async () => {
    const src = source();
    const run = consume(src);
    const sent = [1, 2, 3].map((i) => trade(i, BASE_MS + i * 1_000));
    for (const t of sent) fake.pushTrade(t);
    await vi.waitFor(() => expect(run.ticks).toHaveLength(3), WAIT);

    fake.dropConnections();
    await vi.waitFor(() => expect(fake.connectionsOpened()).toBe(2), WAIT);
    const after = trade(4, BASE_MS + 4_000);
    fake.pushTrade(after);
    await vi.waitFor(() => expect(run.ticks).toHaveLength(4), WAIT);
    expect(run.ticks).toEqual([...sent, after].map(tickOf));
    expect(src.stats().duplicates).toBe(3);
    expect(run.statuses).toContainEqual({ state: 'disconnected', reason: expect.any(String) });
  });

  it('reconnects when the server goes silent, and not while heartbeats come', async () => {
    const quiet = source({ heartbeatTimeoutMs: 400 });
    fake.setHeartbeatInterval(20);
    const run = consume(quiet);
    await vi.waitFor(() => expect(run.statuses).toEqual([{ state: 'connected' }]), WAIT);
    // 60 heartbeats are 1.2 s, three timeouts' worth: survived because each resets the watchdog.
    const heartbeatsAtStart = fake.heartbeatsSent();
    await vi.waitFor(
      () => expect(fake.heartbeatsSent()).toBeGreaterThan(heartbeatsAtStart + 60),
      WAIT,
    );
    expect(fake.connectionsOpened()).toBe(1);

    fake.setHeartbeatInterval(0);
    await vi.waitFor(() => expect(fake.connectionsOpened()).toBeGreaterThanOrEqual(2), WAIT);
    expect(run.statuses).toContainEqual({
      state: 'disconnected',
      reason: 'no message for 400 ms (heartbeat timeout)',
    });
    fake.pushTrade(trade(1, BASE_MS));
    await vi.waitFor(() => expect(run.ticks).toEqual([tickOf(trade(1, BASE_MS))]), WAIT);
  });

  it('backs off exponentially while connections keep failing', async () => {
    const logger = recordingLogger();
    fake.setDropOnConnect(true);
    const run = consume(
      source({ logger, backoff: { initialDelayMs: 5, maxDelayMs: 40, multiplier: 2, jitter: 0 } }),
    );
    const delays = (): unknown[] =>
      logger.lines
        .filter((l) => l.msg === 'connection lost; reconnecting')
        .map((l) => l.fields['delayMs']);
    await vi.waitFor(() => expect(delays().length).toBeGreaterThanOrEqual(6), WAIT);
    expect(delays().slice(0, 6)).toEqual([5, 10, 20, 40, 40, 40]);

    // Once a connection is healthy again, the trades flow.
    fake.setDropOnConnect(false);
    fake.pushTrade(trade(1, BASE_MS));
    await vi.waitFor(() => expect(run.ticks).toHaveLength(1), WAIT);
  });

  it('waits at least 5 s before reconnecting (the vendor refuses more than 60 connects a minute)', async () => {
    const logger = recordingLogger();
    const clock = new SimulatedClock(BASE_MS);
    // The production defaults; jitter drawn at its most (random → 1) gives the shortest wait.
    const src = source({
      logger,
      clock,
      random: () => 1,
      backoff: undefined,
      minReconnectDelayMs: undefined,
      // Simulated time passes only when the test moves it; no heartbeat watchdog in the way.
      heartbeatTimeoutMs: 3_600_000,
    });
    const run = consume(src);
    await vi.waitFor(() => expect(run.statuses).toContainEqual({ state: 'connected' }), WAIT);

    fake.dropConnections();
    const waits = (): unknown[] =>
      logger.lines
        .filter((l) => l.msg === 'connection lost; reconnecting')
        .map((l) => l.fields['delayMs']);
    await vi.waitFor(() => expect(waits()).toHaveLength(1), WAIT);
    expect(waits()).toEqual([MIN_RECONNECT_DELAY_MS]);
    await clock.advanceAsync(MIN_RECONNECT_DELAY_MS - 1);
    expect(src.stats().connections).toBe(1);
    await clock.advanceAsync(1);
    await vi.waitFor(() => expect(fake.connectionsOpened()).toBe(2), WAIT);

    // Failing again and again (that connection never stayed up), the waits double to the cap
    // (60 s, jittered down to 30 s at the most) and stay there.
    fake.setDropOnConnect(true);
    fake.dropConnections();
    for (let n = 2; n <= 6; n++) {
      await vi.waitFor(() => expect(waits()).toHaveLength(n), WAIT);
      await clock.advanceAsync(waits().at(-1) as number);
    }
    await vi.waitFor(() => expect(waits().length).toBeGreaterThanOrEqual(7), WAIT);
    expect(waits().slice(0, 7)).toEqual([5_000, 10_000, 20_000, 30_000, 30_000, 30_000, 30_000]);

    // A connection that stays up a minute resets the backoff: the next wait is 5 s again.
    fake.setDropOnConnect(false);
    await clock.advanceAsync(30_000);
    await vi.waitFor(() => expect(run.statuses.at(-1)).toEqual({ state: 'connected' }), WAIT);
    await clock.advanceAsync(60_000);
    fake.dropConnections();
    await vi.waitFor(() => expect(waits()).toHaveLength(8), WAIT);
    expect(waits().at(-1)).toBe(MIN_RECONNECT_DELAY_MS);
  });

  it('reports an INVALID_SUB for its own subscription as disconnected, naming the pair', async () => {
    const DOGE_USD = 'DOGE-USD' as MarketSymbol;
    // Coinbase (in the fake) does not list DOGE-USD: the streamer refuses that subscription.
    const run = consume(source({ symbols: [BTC_USD, DOGE_USD] }));
    await vi.waitFor(
      () =>
        expect(run.statuses).toContainEqual({
          state: 'disconnected',
          reason: expect.stringMatching(
            /0~Coinbase~DOGE~USD \(DOGE-USD on Coinbase\).*INVALID_SUB/,
          ),
        }),
      WAIT,
    );
    expect(run.statuses).not.toContainEqual({ state: 'connected' });
    // The other pair still streams.
    fake.pushTrade(trade(1, BASE_MS));
    await vi.waitFor(() => expect(run.ticks).toEqual([tickOf(trade(1, BASE_MS))]), WAIT);

    // Once the subscription is accepted (after a reconnect here), the source is healthy again.
    fake.addMarket('Coinbase', 'DOGE', 'USD');
    fake.dropConnections();
    await vi.waitFor(() => expect(run.statuses.at(-1)).toEqual({ state: 'connected' }), WAIT);
  });

  it('reconnects after FORCE_DISCONNECT, saying why', async () => {
    const run = consume(source());
    await vi.waitFor(() => expect(run.statuses).toContainEqual({ state: 'connected' }), WAIT);
    fake.forceDisconnect('Server restarting');
    await vi.waitFor(
      () =>
        expect(run.statuses).toContainEqual({
          state: 'disconnected',
          reason: 'server: FORCE_DISCONNECT Server restarting',
        }),
      WAIT,
    );
    await vi.waitFor(() => expect(fake.connectionsOpened()).toBe(2), WAIT);
    fake.pushTrade(trade(1, BASE_MS));
    await vi.waitFor(() => expect(run.ticks).toHaveLength(1), WAIT);
  });

  it('skips malformed messages and goes on', async () => {
    const logger = recordingLogger();
    const src = source({ logger });
    const run = consume(src);
    await vi.waitFor(() => expect(run.statuses).toContainEqual({ state: 'connected' }), WAIT);
    fake.sendRaw('{"TYPE":"0","M":"Coinbase"'); // cut short
    fake.sendRaw('{"TYPE":"0","M":"Coinbase"');
    fake.sendRaw(
      JSON.stringify({
        TYPE: '0',
        M: 'Coinbase',
        FSYM: 'BTC',
        TSYM: 'USD',
        ID: '7',
        TS: 1_704_110_400,
        Q: 1,
      }),
    );
    fake.sendRaw('[]');
    fake.pushTrade(trade(1, BASE_MS));
    await vi.waitFor(() => expect(run.ticks).toEqual([tickOf(trade(1, BASE_MS))]), WAIT);
    expect(src.stats().malformed).toEqual({
      'invalid-json': 2,
      'bad-trade': 1,
      'not-an-object': 1,
    });
    const warnings = logger.lines.filter((l) => l.level === 'warn' && l.msg.startsWith('skipping'));
    expect(warnings.map((w) => w.fields['kind'])).toEqual([
      'invalid-json',
      'bad-trade',
      'not-an-object',
    ]);
    expect(fake.connectionsOpened()).toBe(1);
  });

  it('ends with UNAUTHENTICATED when the key is refused, without retrying', async () => {
    const run = consume(source({ apiKey: 'wrong-key' }));
    const err = await run.result;
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ code: 'UNAUTHENTICATED', retriable: false });
    expect(fake.connectionsOpened()).toBe(1);
  });

  it('ends with UNAUTHENTICATED when the upgrade is refused with HTTP 401', async () => {
    fake.setUpgradeStatus(401);
    const err = await consume(source()).result;
    expect(err).toMatchObject({ code: 'UNAUTHENTICATED', retriable: false });
  });

  it('fills the whole minutes missed while disconnected from REST, in time order', async () => {
    const src = source();
    const run = consume(src);
    const first = trade(1, BASE_MS + 10_000);
    fake.pushTrade(first);
    await vi.waitFor(() => expect(run.ticks).toHaveLength(1), WAIT);

    // Minutes 1 to 4 are missed; minute 3 had no trades. Minutes 0 and 5 must not be fetched.
    const series = [
      minute(0),
      minute(1),
      minute(2, { open: 40_010, close: 40_001, high: 40_012, low: 40_000 }),
      minute(3, {
        open: 40_001,
        high: 40_001,
        low: 40_001,
        close: 40_001,
        volumefrom: 0,
        volumeto: 0,
      }),
      minute(4, { low: 40_004 }), // opens at its low: three trades
      minute(5),
    ];
    fake.setMinutes('Coinbase', 'BTC', 'USD', series);
    fake.dropConnections();
    const later = [
      trade(2, BASE_MS + 5 * MINUTE_MS + 5_000),
      trade(3, BASE_MS + 5 * MINUTE_MS + 20_000),
    ];
    for (const t of later) fake.pushTrade(t);

    const backfill = series.slice(1, 5).flatMap((c) => candleToTrades(BTC_USD, c, 'Coinbase'));
    expect(backfill).toHaveLength(11);
    await vi.waitFor(() => expect(run.ticks).toHaveLength(1 + backfill.length + 2), WAIT);
    expect(run.ticks).toEqual([tickOf(first), ...backfill, ...later.map(tickOf)]);
    expect(run.statuses).toContainEqual({
      state: 'gap-filling',
      from: BASE_MS + MINUTE_MS,
      to: BASE_MS + 5 * MINUTE_MS,
    });
    await vi.waitFor(() => expect(run.statuses.at(-1)).toEqual({ state: 'connected' }), WAIT);
    expect(fake.restRequests).toEqual([
      {
        path: '/data/v2/histominute',
        query: {
          fsym: 'BTC',
          tsym: 'USD',
          limit: '3',
          toTs: String((BASE_MS + 4 * MINUTE_MS) / 1000),
          e: 'Coinbase',
          tryConversion: 'false',
        },
        authorization: `Apikey ${API_KEY}`,
      },
    ]);
    expect(src.stats()).toMatchObject({ gapFills: 1, gapFillFailures: 0, backfilledTrades: 11 });
  });

  it('fills the gap since resumeFrom at start, skipping re-sent trades already published', async () => {
    const publishedTs = BASE_MS + 10_000;
    const missed = trade(2, BASE_MS + 3 * MINUTE_MS + 1_000);
    fake.pushTrade(trade(0, BASE_MS + 5_000)); // re-sent, older than the newest published
    fake.pushTrade(missed);
    fake.setMinutes('Coinbase', 'BTC', 'USD', [minute(0), minute(1), minute(2), minute(3)]);
    const src = source();
    const run = consume(src, new Map([[BTC_USD, publishedTs]]));

    const backfill = [minute(1), minute(2)].flatMap((c) => candleToTrades(BTC_USD, c, 'Coinbase'));
    await vi.waitFor(() => expect(run.ticks).toHaveLength(backfill.length + 1), WAIT);
    expect(run.ticks).toEqual([...backfill, tickOf(missed)]);
    expect(src.stats().duplicates).toBe(1);
    expect(run.statuses[0]).toEqual({
      state: 'gap-filling',
      from: BASE_MS + MINUTE_MS,
      to: BASE_MS + 3 * MINUTE_MS,
    });
  });

  it('keeps streaming when the gap fill fails', async () => {
    const logger = recordingLogger();
    const src = source({
      logger,
      gapFillRetry: { maxAttempts: 2, backoff: { initialDelayMs: 1, maxDelayMs: 1, jitter: 0 } },
    });
    const run = consume(src, new Map([[BTC_USD, BASE_MS]]));
    fake.failNextRest('http-500', 2);
    fake.setMinutes('Coinbase', 'BTC', 'USD', [minute(1)]);
    const live = trade(5, BASE_MS + 2 * MINUTE_MS + 500);
    fake.pushTrade(live);
    await vi.waitFor(() => expect(run.ticks).toEqual([tickOf(live)]), WAIT);
    expect(src.stats()).toMatchObject({ gapFills: 1, gapFillFailures: 1 });
    expect(
      logger.lines.some((l) => l.level === 'error' && l.msg.startsWith('gap fill failed')),
    ).toBe(true);
    fake.pushTrade(trade(6, BASE_MS + 2 * MINUTE_MS + 900));
    await vi.waitFor(() => expect(run.ticks).toHaveLength(2), WAIT);
  });

  it('ends promptly on abort and closes its socket', async () => {
    const run = consume(source());
    fake.pushTrade(trade(1, BASE_MS));
    await vi.waitFor(() => expect(run.ticks).toHaveLength(1), WAIT);
    expect(fake.openSockets()).toBe(1);
    run.controller.abort();
    expect(await run.result).toBeUndefined();
    await vi.waitFor(() => expect(fake.openSockets()).toBe(0), WAIT);
  });

  it('ends promptly on abort during a long backoff', async () => {
    fake.setDropOnConnect(true);
    const run = consume(
      source({ backoff: { initialDelayMs: 60_000, maxDelayMs: 60_000, jitter: 0 } }),
    );
    await vi.waitFor(() => expect(run.statuses).toHaveLength(1), WAIT);
    run.controller.abort();
    expect(await run.result).toBeUndefined();
    expect(fake.connectionsOpened()).toBe(1);
  }, 5_000);

  it('closes its socket when the consumer stops iterating', async () => {
    const src = source();
    const controller = new AbortController();
    fake.pushTrade(trade(1, BASE_MS));
    for await (const tick of src.trades({ signal: controller.signal })) {
      expect(tick.id).toBe('Coinbase:1');
      break;
    }
    await vi.waitFor(() => expect(fake.openSockets()).toBe(0), WAIT);
  });
});
