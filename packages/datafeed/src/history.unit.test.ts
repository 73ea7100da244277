import { describe, expect, it, vi } from 'vitest';
import { SimulatedClock } from '@candlestream/core';
import { createDatafeed } from './datafeed.js';
import { FakeSocketFactory, FakeUdfServer, RECORDED, T0_S } from './testing.js';
import type {
  Bar,
  CandlestreamDatafeed,
  DatafeedOptions,
  HistoryMetadata,
  LibrarySymbolInfo,
  PeriodParams,
} from './types.js';
import { toSymbolInfo } from './udf.js';

const MINUTE_S = 60;
const BTC = toSymbolInfo(RECORDED.symbols);

function setup(options: Partial<DatafeedOptions> = {}) {
  const server = new FakeUdfServer();
  const log = vi.fn();
  const feed = createDatafeed({
    baseUrl: 'http://datastore.test:3000/',
    fetch: server.fetch,
    WebSocket: new FakeSocketFactory().WebSocket,
    log,
    ...options,
  });
  return { server, feed, log };
}

type HistoryOutcome = { bars: Bar[]; meta: HistoryMetadata | undefined } | { error: string };

function getBars(
  feed: CandlestreamDatafeed,
  period: Partial<PeriodParams>,
  resolution = '1',
  info: LibrarySymbolInfo = BTC,
): Promise<HistoryOutcome> {
  const params = { from: T0_S, to: T0_S + 6 * MINUTE_S, countBack: 0, firstDataRequest: true };
  return new Promise((resolve) => {
    feed.getBars(
      info,
      resolution,
      { ...params, ...period },
      (bars, meta) => resolve({ bars, meta }),
      (error) => resolve({ error }),
    );
  });
}

/** The recorded 1m bar `i` as the datafeed must hand it out (time in ms). */
function recordedBar(i: number): Bar {
  const h = RECORDED.history;
  return {
    time: h.t[i]! * 1_000,
    open: h.o[i]!,
    high: h.h[i]!,
    low: h.l[i]!,
    close: h.c[i]!,
    volume: h.v[i]!,
  };
}

describe('onReady, search, resolve, time', () => {
  it("answers onReady with /udf/config's configuration", async () => {
    const { feed, server } = setup();
    const config = await new Promise((resolve) => feed.onReady(resolve));
    expect(config).toEqual(RECORDED.config);
    expect(server.requestsTo('config')).toHaveLength(1);
  });

  it("answers onReady with the datastore's defaults when /udf/config fails", async () => {
    const { feed, server, log } = setup();
    server.override('config', () => new Error('ECONNREFUSED'));
    const config = await new Promise((resolve) => feed.onReady(resolve));
    expect(config).toMatchObject({
      supports_time: true,
      supported_resolutions: RECORDED.config.supported_resolutions,
    });
    expect(log).toHaveBeenCalledWith(expect.stringContaining('config'), expect.anything());
  });

  it('resolves a symbol in any spelling to the LibrarySymbolInfo of /udf/symbols', async () => {
    const { feed, server } = setup();
    const info = await new Promise<LibrarySymbolInfo>((resolve, reject) =>
      feed.resolveSymbol('btcusd', resolve, (reason) => reject(new Error(reason))),
    );
    expect(server.requestsTo('symbols')[0]?.searchParams.get('symbol')).toBe('btcusd');
    expect(info).toMatchObject({
      name: 'BTC-USD',
      ticker: 'BTC-USD',
      description: 'BTC / USD',
      type: 'crypto',
      session: '24x7',
      timezone: 'Etc/UTC',
      exchange: 'Candlestream',
      listed_exchange: 'Candlestream',
      minmov: 1,
      pricescale: 100,
      has_intraday: true,
      has_daily: true,
      has_weekly_and_monthly: true,
      supported_resolutions: RECORDED.symbols.supported_resolutions,
      intraday_multipliers: RECORDED.symbols.intraday_multipliers,
      volume_precision: 8,
      data_status: 'streaming',
      format: 'price',
    });
  });

  it("answers an unknown symbol with 'unknown_symbol', an outage with its message", async () => {
    const { feed, server } = setup();
    const resolve = (name: string) =>
      new Promise((ok) => feed.resolveSymbol(name, () => ok('resolved'), ok));
    expect(await resolve('DOGE-XYZ')).toBe('unknown_symbol');
    server.override('symbols', () => ({
      status: 500,
      body: { s: 'error', errmsg: 'internal error' },
    }));
    expect(await resolve('BTC-USD')).toBe('internal error');
  });

  it('searches through /udf/search and answers [] when it fails', async () => {
    const { feed, server } = setup();
    const search = (text: string) => new Promise((ok) => feed.searchSymbols(text, '', '', ok));
    expect(await search('eth')).toEqual([RECORDED.search[1]]);
    expect(server.requestsTo('search')[0]?.searchParams.get('query')).toBe('eth');
    server.override('search', () => new Error('offline'));
    expect(await search('eth')).toEqual([]);
  });

  it('answers getServerTime with the epoch seconds of /udf/time', async () => {
    const { feed } = setup();
    expect(await new Promise((ok) => feed.getServerTime(ok))).toBe(Number(RECORDED.time));
  });

  it('sends the token as a Bearer header', async () => {
    const { feed, server } = setup({ token: 'jwt.abc' });
    await new Promise((ok) => feed.getServerTime(ok));
    expect(server.requests[0]?.headers).toEqual({ Authorization: 'Bearer jwt.abc' });
  });
});

describe('getBars', () => {
  it('passes countBack as countback and answers exactly those bars, in ms, ascending', async () => {
    const { feed, server } = setup();
    const outcome = await getBars(feed, { from: 0, countBack: 3, firstDataRequest: false });
    const url = server.requestsTo('history')[0];
    expect(Object.fromEntries(url?.searchParams ?? [])).toEqual({
      symbol: 'BTC-USD',
      resolution: '1',
      from: '0',
      to: String(T0_S + 6 * MINUTE_S),
      countback: '3',
    });
    expect(outcome).toEqual({ bars: [3, 4, 5].map(recordedBar), meta: { noData: false } });
  });

  it('reaches a day past `to` on the first request, for a browser clock that is slow', async () => {
    const { feed, server } = setup();
    await getBars(feed, { to: T0_S, countBack: 3, firstDataRequest: true });
    await getBars(feed, { to: T0_S, countBack: 0, firstDataRequest: true });
    const tos = server.requestsTo('history').map((url) => Number(url.searchParams.get('to')));
    expect(tos).toEqual([T0_S + 86_400, T0_S]);
  });

  it('keeps only the newest countBack bars should the server send more', async () => {
    const { feed, server } = setup();
    server.override('history', () => ({ body: RECORDED.history }));
    const outcome = await getBars(feed, { countBack: 2 });
    expect(outcome).toEqual({ bars: [4, 5].map(recordedBar), meta: { noData: false } });
  });

  it('hands out fresh bars: changing an answer does not change the next one', async () => {
    const { feed } = setup();
    const first = await getBars(feed, { countBack: 2 });
    if (!('bars' in first)) throw new Error(first.error);
    first.bars[0]!.close = -1;
    first.bars.push(recordedBar(0));
    const second = await getBars(feed, { countBack: 2 });
    expect(second).toEqual({ bars: [4, 5].map(recordedBar), meta: { noData: false } });
  });

  it('answers an empty range with noData and nextTime, in ms, of the newest earlier bar', async () => {
    const { feed } = setup();
    const outcome = await getBars(feed, { from: T0_S + 10 * MINUTE_S, to: T0_S + 20 * MINUTE_S });
    expect(outcome).toEqual({
      bars: [],
      meta: { noData: true, nextTime: (T0_S + 5 * MINUTE_S) * 1_000 },
    });
  });

  it('answers noData without nextTime when nothing is earlier', async () => {
    const { feed } = setup();
    const outcome = await getBars(feed, { from: T0_S - 3_600, to: T0_S - MINUTE_S });
    expect(outcome).toEqual({ bars: [], meta: { noData: true } });
  });

  it.each([
    [
      'a UDF error',
      () => ({ status: 400, body: { s: 'error', errmsg: 'countback must be ≤ 20000' } }),
      'countback must be ≤ 20000',
    ],
    ['a failed network', () => new Error('ECONNREFUSED'), 'ECONNREFUSED'],
    ['an HTTP failure without a body', () => ({ status: 502, body: 'Bad Gateway' }), 'HTTP 502'],
    [
      'columns of different lengths',
      () => ({ body: { ...RECORDED.history, c: [1] } }),
      'different lengths',
    ],
    [
      'bars out of order',
      () => ({ body: { ...RECORDED.history, t: [...RECORDED.history.t].reverse() } }),
      'out of order',
    ],
  ])('calls onError on %s', async (_label, answer, message) => {
    const { feed, server } = setup();
    server.override('history', answer);
    const outcome = await getBars(feed, { countBack: 3 });
    expect(outcome).toEqual({ error: expect.stringContaining(message) });
  });

  it('calls onError for a resolution the datastore has not, without asking it', async () => {
    const { feed, server } = setup();
    expect(await getBars(feed, {}, '3')).toEqual({
      error: expect.stringContaining('resolution "3"'),
    });
    expect(server.requestsTo('history')).toHaveLength(0);
  });

  it('leaves no timer behind once answered', async () => {
    const clock = new SimulatedClock();
    const { feed } = setup({ clock });
    const outcome = getBars(feed, { countBack: 2 });
    await clock.advanceAsync(0);
    expect(await outcome).toMatchObject({ meta: { noData: false } });
    expect(clock.pendingTimers).toBe(0);
  });

  it('calls onError when the server does not answer in time', async () => {
    const clock = new SimulatedClock();
    const { feed } = setup({
      fetch: () => new Promise(() => undefined),
      requestTimeoutMs: 5_000,
      clock,
    });
    let settled = false;
    const outcome = getBars(feed, {}).finally(() => (settled = true));
    await clock.advanceAsync(4_999);
    expect(settled).toBe(false);
    await clock.advanceAsync(2);
    expect(await outcome).toEqual({ error: '/udf/history did not answer within 5000 ms' });
  });
});

describe('callbacks are asynchronous (Datafeed API: "Asynchronous callbacks")', () => {
  const calls: [string, (feed: CandlestreamDatafeed, cb: (...args: unknown[]) => void) => void][] =
    [
      ['onReady', (feed, cb) => feed.onReady(cb)],
      ['searchSymbols', (feed, cb) => feed.searchSymbols('btc', '', '', cb)],
      ['resolveSymbol', (feed, cb) => feed.resolveSymbol('BTC-USD', cb, cb)],
      ['resolveSymbol (unknown)', (feed, cb) => feed.resolveSymbol('NOPE-XYZ', cb, cb)],
      [
        'getBars',
        (feed, cb) =>
          feed.getBars(
            BTC,
            '1',
            { from: 0, to: T0_S + 360, countBack: 2, firstDataRequest: true },
            cb,
            cb,
          ),
      ],
      [
        'getBars (no data)',
        (feed, cb) =>
          feed.getBars(BTC, '1', { from: 0, to: 1, countBack: 0, firstDataRequest: true }, cb, cb),
      ],
      [
        'getBars (bad resolution)',
        (feed, cb) =>
          feed.getBars(BTC, '3', { from: 0, to: 1, countBack: 0, firstDataRequest: true }, cb, cb),
      ],
      ['getServerTime', (feed, cb) => feed.getServerTime(cb)],
    ];

  it.each(calls)(
    '%s calls back in a later macrotask, never within the call',
    async (_name, call) => {
      const clock = new SimulatedClock();
      const { feed } = setup({ clock });
      let returned = false;
      const callback = vi.fn(() => returned);
      call(feed, callback);
      returned = true;
      // The answer is at hand after a few microtasks; the callback must still wait for a task.
      for (let i = 0; i < 20; i++) await Promise.resolve();
      expect(callback).not.toHaveBeenCalled();
      await clock.runAllAsync();
      expect(callback).toHaveBeenCalledTimes(1);
      expect(callback.mock.results[0]?.value).toBe(true);
    },
  );
});
