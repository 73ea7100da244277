import { beforeEach, describe, expect, it, vi } from 'vitest';
import { SimulatedClock } from '@candlestream/core';
import { createDatafeed, streamUrl } from './datafeed.js';
import { FakeSocketFactory, FakeUdfServer, RECORDED, T0_S } from './testing.js';
import type { Bar, DatafeedOptions, LibrarySymbolInfo } from './types.js';
import { toSymbolInfo } from './udf.js';

const MINUTE_MS = 60_000;
const T0_MS = T0_S * 1_000;
const BTC = toSymbolInfo(RECORDED.symbols);
const ETH: LibrarySymbolInfo = { ...BTC, name: 'ETH-USD', ticker: 'ETH-USD' };

function setup(options: Partial<DatafeedOptions> = {}) {
  const server = new FakeUdfServer();
  const sockets = new FakeSocketFactory();
  const states: string[] = [];
  const log = vi.fn();
  const feed = createDatafeed({
    baseUrl: 'http://datastore.test:3000',
    fetch: server.fetch,
    WebSocket: sockets.WebSocket,
    reconnect: { initialDelayMs: 500, maxDelayMs: 15_000, jitter: 0 },
    onConnectionState: (state) => states.push(state),
    log,
    clock,
    ...options,
  });
  /** Subscribes a listener and returns its spies. */
  const listen = (guid: string, info = BTC, resolution = '1') => {
    const spies = { onTick: vi.fn<(bar: Bar) => void>(), onReset: vi.fn() };
    feed.subscribeBars(info, resolution, spies.onTick, guid, spies.onReset);
    return spies;
  };
  /** getBars as TradingView's first request, answered (countBack 2: bars 12:04 and 12:05). */
  const loadHistory = async (): Promise<void> => {
    const onResult = vi.fn();
    const period = { from: 0, to: T0_S + 360, countBack: 2, firstDataRequest: true };
    feed.getBars(BTC, '1', period, onResult, (e) => {
      onResult(new Error(e));
    });
    await clock.advanceAsync(0);
    expect(onResult.mock.calls[0]?.[0]).toHaveLength(2);
  };
  return { feed, sockets, states, log, listen, loadHistory };
}

/** A /stream bar message for the bar opening `minute` minutes after 12:00. */
function bar(symbol: string, interval: string, minute: number, close = 69_550) {
  const time = new Date(T0_MS + minute * MINUTE_MS).toISOString();
  return {
    type: 'bar',
    symbol,
    interval,
    bar: { time, open: 69_500, high: 69_600, low: 69_400, close, volume: 1.25 },
    final: false,
  };
}

const times = (spy: { mock: { calls: [Bar][] } }): number[] =>
  spy.mock.calls.map(([b]) => (b.time - T0_MS) / MINUTE_MS);

/** The datafeed's timers (callbacks, reconnects, watchdog, deadlines) run on it; tests advance it. */
let clock: SimulatedClock;
beforeEach(() => {
  clock = new SimulatedClock();
});

describe('subscribeBars', () => {
  it('opens one socket on the first subscription, at /stream with the token, and subscribes on open', () => {
    const { sockets, states, listen } = setup({ token: 'eyJ.abc-_' });
    expect(sockets.sockets).toHaveLength(0);
    const a = listen('a');
    listen('b', ETH, '5');
    expect(sockets.sockets).toHaveLength(1);
    expect(sockets.last.url).toBe('ws://datastore.test:3000/stream?token=eyJ.abc-_');
    expect(states).toEqual(['connecting']);
    sockets.last.open();
    expect(sockets.last.sent).toEqual([
      { type: 'subscribe', symbol: 'BTC-USD', interval: '1m' },
      { type: 'subscribe', symbol: 'ETH-USD', interval: '5m' },
    ]);
    expect(states).toEqual(['connecting', 'open']);
    expect(a.onReset).not.toHaveBeenCalled();
  });

  it('derives wss:// from https:// and keeps a path prefix', () => {
    expect(streamUrl('https://charts.example/api/')).toBe('wss://charts.example/api/stream');
  });

  it('routes a bar only to listeners of its own symbol and resolution, each its own copy', () => {
    const { sockets, listen } = setup();
    const [a, b, eth, btc5] = [
      listen('a'),
      listen('b'),
      listen('eth', ETH),
      listen('btc5', BTC, '5'),
    ];
    sockets.last.open();
    sockets.last.receive(bar('BTC-USD', '1m', 6));
    expect(a.onTick).toHaveBeenCalledWith({
      time: T0_MS + 6 * MINUTE_MS,
      open: 69_500,
      high: 69_600,
      low: 69_400,
      close: 69_550,
      volume: 1.25,
    });
    const [aBar] = a.onTick.mock.calls[0]!;
    const [bBar] = b.onTick.mock.calls[0]!;
    aBar.close = -1;
    expect(bBar.close).toBe(69_550);
    expect(eth.onTick).not.toHaveBeenCalled();
    expect(btc5.onTick).not.toHaveBeenCalled();
    sockets.last.receive(bar('ETH-USD', '1m', 6));
    sockets.last.receive(bar('BTC-USD', '5m', 5));
    expect([a, b, eth, btc5].map((s) => s.onTick.mock.calls.length)).toEqual([1, 1, 1, 1]);
  });

  it('never hands a listener a bar older than the last getBars bar; the same time updates it', async () => {
    const { sockets, listen, loadHistory } = setup();
    await loadHistory(); // newest bar: 12:05
    const a = listen('a');
    sockets.last.open();
    for (const minute of [4, 5, 6, 5, 6, 3]) sockets.last.receive(bar('BTC-USD', '1m', minute));
    expect(times(a.onTick)).toEqual([5, 6, 6]);
  });

  it('seeds a later listener from the newest bar the series has delivered', () => {
    const { sockets, listen } = setup();
    const a = listen('a');
    sockets.last.open();
    sockets.last.receive(bar('BTC-USD', '1m', 7));
    const b = listen('b');
    for (const minute of [6, 7, 8]) sockets.last.receive(bar('BTC-USD', '1m', minute));
    expect(times(a.onTick)).toEqual([7, 7, 8]);
    expect(times(b.onTick)).toEqual([7, 8]);
  });

  it('sends one subscribe for two listeners of a series, and unsubscribe when the last leaves', () => {
    const { feed, sockets, listen } = setup();
    const [a, b] = [listen('a'), listen('b')];
    sockets.last.open();
    expect(sockets.last.sent).toEqual([{ type: 'subscribe', symbol: 'BTC-USD', interval: '1m' }]);
    feed.unsubscribeBars('a');
    feed.unsubscribeBars('nobody');
    expect(sockets.last.sent).toHaveLength(1);
    sockets.last.receive(bar('BTC-USD', '1m', 6));
    expect([a.onTick.mock.calls.length, b.onTick.mock.calls.length]).toEqual([0, 1]);
    feed.unsubscribeBars('b');
    expect(sockets.last.sent.at(-1)).toEqual({
      type: 'unsubscribe',
      symbol: 'BTC-USD',
      interval: '1m',
    });
    listen('c');
    expect(sockets.last.sent.at(-1)).toEqual({
      type: 'subscribe',
      symbol: 'BTC-USD',
      interval: '1m',
    });
    expect(sockets.sockets).toHaveLength(1);
  });

  it('handles error, heartbeat, subscribed and pong messages without ticking', () => {
    const { sockets, listen, log } = setup();
    const a = listen('a');
    sockets.last.open();
    sockets.last.receive({ type: 'subscribed', symbol: 'BTC-USD', interval: '1m' });
    sockets.last.receive({ type: 'heartbeat', time: '2024-06-10T12:06:00.000Z' });
    sockets.last.receive({ type: 'pong' });
    expect(log).not.toHaveBeenCalled();
    const error = 'at most 50 subscriptions per connection';
    sockets.last.receive({ type: 'error', error, symbol: 'BTC-USD', interval: '1m' });
    expect(log).toHaveBeenCalledWith('stream error', { error, symbol: 'BTC-USD', interval: '1m' });
    sockets.last.receive({ ...bar('BTC-USD', '1m', 6), bar: { time: 'soon', open: 1 } });
    sockets.last.receive('not json');
    expect(log).toHaveBeenCalledTimes(3);
    expect(a.onTick).not.toHaveBeenCalled();
  });
});

describe('reconnecting', () => {
  it('retries with exponential backoff, re-sends every subscription and asks for a cache reset', async () => {
    const { feed, sockets, states, listen } = setup();
    const [a, eth, btc5] = [listen('a'), listen('eth', ETH), listen('btc5', BTC, '5')];
    sockets.last.open();
    sockets.last.drop();
    expect(states).toEqual(['connecting', 'open', 'reconnecting']);
    await clock.advanceAsync(499);
    expect(sockets.sockets).toHaveLength(1);
    await clock.advanceAsync(1);
    expect(sockets.sockets).toHaveLength(2);
    sockets.last.drop(); // the server is still down
    await clock.advanceAsync(999);
    expect(sockets.sockets).toHaveLength(2);
    await clock.advanceAsync(1);
    expect(sockets.sockets).toHaveLength(3);
    feed.unsubscribeBars('eth'); // while down: not re-sent
    sockets.last.open();
    expect(sockets.last.sent).toEqual([
      { type: 'subscribe', symbol: 'BTC-USD', interval: '1m' },
      { type: 'subscribe', symbol: 'BTC-USD', interval: '5m' },
    ]);
    expect(states.at(-1)).toBe('open');
    expect(a.onReset).not.toHaveBeenCalled(); // not from inside the socket event
    feed.unsubscribeBars('btc5'); // gone before its reset is due: not called
    await clock.advanceAsync(0);
    expect(a.onReset).toHaveBeenCalledTimes(1);
    expect(eth.onReset).not.toHaveBeenCalled();
    expect(btc5.onReset).not.toHaveBeenCalled();
    sockets.last.receive(bar('BTC-USD', '1m', 9));
    expect(times(a.onTick)).toEqual([9]);
    sockets.last.drop(); // an open resets the backoff
    await clock.advanceAsync(500);
    expect(sockets.sockets).toHaveLength(4);
  });

  it('never waits longer than maxDelayMs', async () => {
    const { sockets, listen } = setup({
      reconnect: { initialDelayMs: 500, maxDelayMs: 2_000, jitter: 0 },
    });
    listen('a');
    const waits: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = sockets.sockets.length;
      sockets.last.drop();
      let waited = 0;
      while (sockets.sockets.length === before) {
        await clock.advanceAsync(100);
        waited += 100;
      }
      waits.push(waited);
    }
    expect(waits).toEqual([500, 1_000, 2_000, 2_000, 2_000]);
  });

  it('replaces a socket silent for staleAfterMs; any message keeps it', async () => {
    const { sockets, states, listen } = setup({ staleAfterMs: 45_000 });
    listen('a');
    const first = sockets.last;
    first.open();
    await clock.advanceAsync(30_000);
    first.receive({ type: 'heartbeat', time: '2024-06-10T12:06:00.000Z' });
    await clock.advanceAsync(44_999);
    expect(first.closedWith).toBeUndefined();
    await clock.advanceAsync(1);
    expect(first.closedWith).toEqual({ code: 4000, reason: 'silent' });
    expect(first.onmessage).toBeNull();
    expect(states.at(-1)).toBe('reconnecting');
    await clock.advanceAsync(500);
    expect(sockets.sockets).toHaveLength(2);
  });

  it('closes quietly when dropped with nothing subscribed; the next subscription opens again', async () => {
    const { feed, sockets, states, listen } = setup();
    listen('a');
    sockets.last.open();
    feed.unsubscribeBars('a');
    sockets.last.drop();
    await clock.advanceAsync(60_000);
    expect(sockets.sockets).toHaveLength(1);
    expect(states).toEqual(['connecting', 'open', 'closed']);
    const b = listen('b');
    expect(sockets.sockets).toHaveLength(2);
    sockets.last.open();
    await clock.advanceAsync(0);
    expect(b.onReset).not.toHaveBeenCalled();
    expect(states.slice(3)).toEqual(['connecting', 'open']);
  });
});

describe('destroy', () => {
  it('closes the socket, stops every timer and calls nothing afterwards', async () => {
    const { feed, sockets, states, listen } = setup();
    const a = listen('a');
    sockets.last.open();
    sockets.last.drop();
    await clock.advanceAsync(500);
    const socket = sockets.last;
    socket.open(); // reconnected: a reset is now due
    const late = vi.fn();
    feed.getBars(
      BTC,
      '1',
      { from: 0, to: T0_S + 360, countBack: 2, firstDataRequest: true },
      late,
      late,
    );
    feed.onReady(late);
    feed.destroy();
    expect(socket.closedWith).toEqual({ code: 1000, reason: 'datafeed destroyed' });
    expect(socket.onmessage).toBeNull();
    expect(states.at(-1)).toBe('closed');
    expect(clock.pendingTimers).toBe(0); // no retry, watchdog, request deadline or callback left
    const reported = states.length;
    socket.receive(bar('BTC-USD', '1m', 9)); // a frame already in flight
    feed.subscribeBars(BTC, '1', late, 'b', late);
    await clock.advanceAsync(120_000);
    expect(late).not.toHaveBeenCalled();
    expect(a.onTick).not.toHaveBeenCalled();
    expect(a.onReset).not.toHaveBeenCalled();
    expect(sockets.sockets).toHaveLength(2);
    expect(states).toHaveLength(reported);
  });

  it('cancels a pending reconnect', async () => {
    const { feed, sockets, listen } = setup();
    listen('a');
    sockets.last.open();
    sockets.last.drop();
    feed.destroy();
    await clock.advanceAsync(60_000);
    expect(sockets.sockets).toHaveLength(1);
  });
});

/** The /stream message a datastore sends when a backfill of `symbol` ended (docs/API.md). */
function historyMessage(symbol: string, status = 'done', id = 'job-1') {
  return {
    type: 'history',
    symbol,
    backfill: { id, status },
    from: '2024-05-01T00:00:00.000Z',
    to: '2024-05-02T00:00:00.000Z',
  };
}

describe('history (a backfill ended)', () => {
  it("resets every listener of the symbol, whatever its interval, and no other symbol's", async () => {
    const onHistory = vi.fn();
    const { sockets, listen } = setup({ onHistory });
    const a = listen('a');
    const b = listen('b', BTC, '60');
    const eth = listen('eth', ETH, '1');
    sockets.last.open();
    sockets.last.receive(historyMessage('BTC-USD'));
    expect(a.onReset).not.toHaveBeenCalled(); // not from inside the socket event
    await clock.advanceAsync(0);
    expect(a.onReset).toHaveBeenCalledTimes(1);
    expect(b.onReset).toHaveBeenCalledTimes(1);
    expect(eth.onReset).not.toHaveBeenCalled();
    expect(onHistory).toHaveBeenCalledExactlyOnceWith({
      symbol: 'BTC-USD',
      backfill: { id: 'job-1', status: 'done' },
      from: Date.UTC(2024, 4, 1),
      to: Date.UTC(2024, 4, 2),
    });
    // The reset comes first: a page clearing its "loading history" line has the reload under way.
    expect(a.onReset.mock.invocationCallOrder[0]).toBeLessThan(
      onHistory.mock.invocationCallOrder[0]!,
    );
  });

  it('a failed backfill resets too (what it stored before failing is there), and is reported', async () => {
    const onHistory = vi.fn();
    const { sockets, listen } = setup({ onHistory });
    const a = listen('a');
    sockets.last.open();
    sockets.last.receive(historyMessage('BTC-USD', 'failed'));
    await clock.advanceAsync(0);
    expect(a.onReset).toHaveBeenCalledTimes(1);
    expect(onHistory.mock.calls[0]?.[0]).toMatchObject({ backfill: { status: 'failed' } });
  });

  it('an unsubscribed listener is not reset, and live bars go on after the reset', async () => {
    const { feed, sockets, listen } = setup();
    const a = listen('a');
    const gone = listen('gone', BTC, '5');
    sockets.last.open();
    feed.unsubscribeBars('gone');
    sockets.last.receive(historyMessage('BTC-USD'));
    await clock.advanceAsync(0);
    expect(gone.onReset).not.toHaveBeenCalled();
    sockets.last.receive(bar('BTC-USD', '1m', 7));
    await clock.advanceAsync(0);
    expect(times(a.onTick)).toEqual([7]);
  });

  it('a malformed history message is logged and changes nothing; unknown types are ignored', async () => {
    const { sockets, listen, log } = setup();
    const a = listen('a');
    sockets.last.open();
    sockets.last.receive({ ...historyMessage('BTC-USD'), from: 'yesterday' });
    sockets.last.receive({ type: 'history', symbol: 'BTC-USD' });
    expect(log).toHaveBeenCalledWith('stream sent a malformed history message', expect.anything());
    log.mockClear();
    sockets.last.receive({ type: 'announcement', text: 'from a newer server' });
    sockets.last.receive(bar('BTC-USD', '1m', 3));
    await clock.advanceAsync(0);
    expect(a.onReset).not.toHaveBeenCalled();
    expect(log).not.toHaveBeenCalled();
    expect(times(a.onTick)).toEqual([3]);
    expect(sockets.last.readyState).toBe(1);
  });
});
