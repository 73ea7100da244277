import { SimulatedClock } from '@candlestream/core';
import type { Bar } from '@candlestream/datafeed';
import { describe, expect, it } from 'vitest';
import type { Answer, ReplayHost, ReplaySocket, ReplayView } from './replay.js';
import {
  historyEnd,
  pageMode,
  parseReplayMessage,
  parseReplayView,
  parseSpeed,
  parseUtcInput,
  replayFailed,
  replayLine,
  ReplayMode,
  SPEEDS,
  STATUS_POLL_MS,
  streamInterval,
  utcInputValue,
} from './replay.js';

const MINUTE_MS = 60_000;
const FROM = Date.UTC(2026, 10, 20, 0, 0);
const NOW = Date.UTC(2026, 10, 21, 0, 0);

/** A ReplayView as the datastore answers it (docs: POST /replays). */
function viewBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'r1',
    state: 'paused',
    symbols: ['BTC-USD'],
    from: new Date(FROM).toISOString(),
    to: new Date(NOW).toISOString(),
    speed: 1,
    simTime: null,
    percent: 0,
    messages: 0,
    topic: 'replay.r1',
    reason: null,
    error: null,
    updatedAt: new Date(NOW).toISOString(),
    ...extra,
  };
}
const view = (extra: Record<string, unknown> = {}): ReplayView => parseReplayView(viewBody(extra))!;

describe('reading the replay API', () => {
  it('reads a ReplayView with its times in epoch ms', () => {
    expect(
      parseReplayView(viewBody({ simTime: '2026-11-20T00:05:00.000Z', speed: 'max' })),
    ).toEqual({
      id: 'r1',
      state: 'paused',
      symbols: ['BTC-USD'],
      from: FROM,
      to: NOW,
      speed: 'max',
      simTime: FROM + 5 * MINUTE_MS,
      percent: 0,
      messages: 0,
      topic: 'replay.r1',
      reason: null,
      error: null,
      updatedAt: NOW,
    });
  });

  it('refuses what is not a session rather than showing NaN', () => {
    expect(parseReplayView({ error: 'simulator not answering' })).toBeUndefined();
    expect(parseReplayView(viewBody({ state: 'running' }))).toBeUndefined();
    expect(parseReplayView(viewBody({ from: 'yesterday' }))).toBeUndefined();
    expect(parseReplayView(viewBody({ speed: 0 }))).toBeUndefined();
    expect(parseReplayView(viewBody({ simTime: 'x' }))).toBeUndefined();
  });

  it('reads session bars, statuses and errors from /stream, and nothing of the live series', () => {
    const bar = {
      type: 'bar',
      session: 'r1',
      symbol: 'BTC-USD',
      interval: '1m',
      bar: { time: '2026-11-20T00:05:00.000Z', open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 },
      final: true,
    };
    expect(parseReplayMessage(JSON.stringify(bar))).toEqual({
      type: 'bar',
      session: 'r1',
      symbol: 'BTC-USD',
      interval: '1m',
      bar: { time: FROM + 5 * MINUTE_MS, open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 },
      final: true,
    });
    const { session: _, ...live } = bar;
    expect(parseReplayMessage(JSON.stringify(live))).toBeUndefined();
    expect(
      parseReplayMessage(JSON.stringify({ ...bar, bar: { ...bar.bar, open: 'x' } })),
    ).toBeUndefined();
    expect(
      parseReplayMessage(JSON.stringify({ type: 'replay', session: 'r1', status: viewBody() })),
    ).toMatchObject({ type: 'replay', session: 'r1', status: { id: 'r1', state: 'paused' } });
    expect(
      parseReplayMessage(JSON.stringify({ type: 'error', error: 'unknown session', session: 'x' })),
    ).toEqual({ type: 'error', session: 'x', error: 'unknown session' });
    expect(parseReplayMessage('{"type":"heartbeat"}')).toBeUndefined();
    expect(parseReplayMessage('not json')).toBeUndefined();
  });
});

describe('the page side of a replay', () => {
  it('says the state, the simulated time in UTC and how far, as the status line', () => {
    expect(replayLine(view({ simTime: '2026-11-20T00:05:30Z', percent: 3.7 }))).toBe(
      'paused · 2026-11-20 00:05 UTC · 3%',
    );
    // Before the first trade the session stands at its start.
    expect(replayLine(view({ state: 'playing' }))).toBe('playing · 2026-11-20 00:00 UTC · 0%');
    expect(replayLine(view({ state: 'ended', reason: 'done', percent: 100 }))).toBe(
      'ended · 2026-11-20 00:00 UTC · 100% (the end of the range)',
    );
    expect(replayLine(view({ state: 'failed', error: 'database gone' }))).toMatch(
      /^failed · .*: database gone$/,
    );
  });

  it('reads a typed start as UTC and writes one back to the minute', () => {
    expect(parseUtcInput('2026-11-20T00:05')).toBe(FROM + 5 * MINUTE_MS);
    expect(parseUtcInput('2026-11-20T00:05:30')).toBe(FROM + 5.5 * MINUTE_MS);
    expect(parseUtcInput('')).toBeUndefined();
    expect(parseUtcInput('2026-02-30T00:00')).toBeUndefined();
    expect(parseUtcInput('2026-11-20')).toBeUndefined();
    expect(utcInputValue(FROM + 5 * MINUTE_MS + 42_000)).toBe('2026-11-20T00:05');
  });

  it('offers the speeds of the spec and reads the select back', () => {
    expect(SPEEDS).toEqual([0.1, 0.5, 1, 2, 5, 10, 60, 100, 1_000, 'max']);
    for (const speed of SPEEDS) expect(parseSpeed(String(speed))).toBe(speed);
    expect(parseSpeed('')).toBeUndefined();
    expect(parseSpeed('fast')).toBeUndefined();
  });

  it('hides the bar holding the start: history ends at its open', () => {
    const start = FROM + 7 * MINUTE_MS;
    expect(historyEnd(start, '1')).toBe(start);
    expect(historyEnd(start, '5')).toBe(FROM + 5 * MINUTE_MS);
    expect(historyEnd(start, '60')).toBe(FROM);
    expect(streamInterval('1D')).toBe('1d');
    expect(streamInterval('1m')).toBe('1m');
  });

  it('publishes the phase, then the session state, as data-replay', () => {
    expect(pageMode('off', undefined)).toBe('off');
    expect(pageMode('picking', undefined)).toBe('picking');
    expect(pageMode('starting', view())).toBe('starting');
    expect(pageMode('on', view({ state: 'playing' }))).toBe('playing');
    expect(pageMode('on', view({ state: 'failed' }))).toBe('ended');
  });

  it('says why a request failed in words, the simulator named on a 503', () => {
    expect(replayFailed('start the replay', 503, 'the simulator did not answer in 5 s.')).toBe(
      'Could not start the replay: the simulator did not answer in 5 s.',
    );
    expect(replayFailed('start the replay', 503, undefined)).toBe(
      'Could not start the replay: the replay service is not available; is the simulator running?',
    );
    expect(replayFailed('play the replay', 409, 'ended')).toBe(
      'Could not play the replay: the replay has already ended.',
    );
    expect(replayFailed('start the replay', 400, 'from is after to')).toBe(
      'Could not start the replay: from is after to.',
    );
    expect(replayFailed('start the replay', 0, 'Failed to fetch')).toMatch(/did not answer/);
  });
});

class FakeSocket implements ReplaySocket {
  readyState = 0;
  readonly sent: Record<string, unknown>[] = [];
  closed = false;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {
    this.closed = true;
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(message: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(): void {
    this.readyState = 3;
    this.onclose?.({});
  }
}

/** A page around the controller: records the requests, the chart calls and the notices. */
function harness(answers: (method: string, path: string, body: unknown) => Answer) {
  const clock = new SimulatedClock(NOW);
  const sockets: FakeSocket[] = [];
  const requests: { method: string; path: string; body: unknown }[] = [];
  const shown: { resolution: string; end: number }[] = [];
  const bars: Bar[] = [];
  const notices: (string | undefined)[] = [];
  let resolution = '1';
  let live = 0;
  let showOk = true;
  const host: ReplayHost = {
    symbol: () => 'BTC-USD',
    resolution: () => resolution,
    request: (method, path, body) => {
      requests.push({ method, path, body });
      return Promise.resolve(answers(method, path, body));
    },
    showBefore: (r, end) => {
      shown.push({ resolution: r, end });
      if (showOk) resolution = r;
      return Promise.resolve(showOk);
    },
    onBar: (bar) => bars.push(bar),
    goLive: () => {
      live++;
      return Promise.resolve();
    },
    notice: (text) => notices.push(text),
    onChange: () => undefined,
    openSocket: () => {
      const socket = new FakeSocket();
      sockets.push(socket);
      return socket;
    },
    clock,
  };
  const mode = new ReplayMode(host);
  return {
    mode,
    clock,
    sockets,
    requests,
    shown,
    bars,
    notices,
    live: () => live,
    failShow: () => (showOk = false),
    /** Starts at FROM and opens the socket. */
    async started(): Promise<FakeSocket> {
      mode.enter();
      mode.pick(FROM);
      await clock.advanceAsync(0);
      sockets[0]!.open();
      return sockets[0]!;
    },
  };
}

const created = (extra: Record<string, unknown> = {}): Answer => ({
  status: 201,
  body: viewBody(extra),
});
const accepted = (extra: Record<string, unknown> = {}): Answer => ({
  status: 202,
  body: viewBody(extra),
});

describe('a replay session in the page', () => {
  it('a picked bar starts it: POST /replays, the bars before the start, then the subscription', async () => {
    const h = harness(() => created());
    expect(h.mode.phase).toBe('off');
    h.mode.pick(FROM); // not picking: a click is just a click
    expect(h.requests).toEqual([]);
    h.mode.enter();
    expect(h.mode.mode).toBe('picking');
    const socket = await h.started();
    expect(h.requests[0]).toEqual({
      method: 'POST',
      path: '/replays',
      body: {
        symbols: ['BTC-USD'],
        from: '2026-11-20T00:00:00.000Z',
        to: '2026-11-21T00:00:00.000Z',
        speed: 1,
      },
    });
    expect(h.shown).toEqual([{ resolution: '1', end: FROM }]);
    expect(h.mode.mode).toBe('paused');
    expect(socket.sent).toEqual([
      { type: 'subscribe', session: 'r1', symbol: 'BTC-USD', interval: '1m' },
    ]);
  });

  it('applies its bars, and not another session, symbol or interval', async () => {
    const h = harness(() => created());
    const socket = await h.started();
    const bar = { time: '2026-11-20T00:00:00Z', open: 1, high: 1, low: 1, close: 1, volume: 1 };
    const message = { type: 'bar', session: 'r1', symbol: 'BTC-USD', interval: '1m', bar };
    socket.receive(message);
    socket.receive({ ...message, session: 'r2' });
    socket.receive({ ...message, symbol: 'ETH-USD' });
    socket.receive({ ...message, interval: '5m' });
    socket.receive({ type: 'bar', symbol: 'BTC-USD', interval: '1m', bar }); // a live one
    expect(h.bars).toEqual([{ time: FROM, open: 1, high: 1, low: 1, close: 1, volume: 1 }]);
  });

  it('a 503 says the simulator is not running and stays picking, the chart untouched', async () => {
    const h = harness(() => ({ status: 503, body: { error: 'the simulator did not answer' } }));
    h.mode.enter();
    await h.mode.start(FROM);
    expect(h.mode.mode).toBe('picking');
    expect(h.notices.at(-1)).toBe('Could not start the replay: the simulator did not answer.');
    expect(h.shown).toEqual([]);
    expect(h.sockets).toEqual([]);
  });

  it('a start whose history cannot be loaded ends the session it made and stays picking', async () => {
    const h = harness((method, path) => (path === '/replays' ? created() : accepted()));
    h.failShow();
    h.mode.enter();
    await h.mode.start(FROM);
    expect(h.mode.mode).toBe('picking');
    expect(h.requests.at(-1)).toEqual({
      method: 'POST',
      path: '/replays/r1',
      body: { action: 'end' },
    });
  });

  it('play, pause and speed are POSTs; a status on the stream newer than the answer wins', async () => {
    let next = accepted({ state: 'playing' });
    const h = harness((_m, path) => (path === '/replays' ? created() : next));
    const socket = await h.started();
    expect(h.mode.toggleAction).toBe('play');
    await h.mode.togglePlay();
    expect(h.requests.at(-1)).toMatchObject({ path: '/replays/r1', body: { action: 'play' } });
    expect(h.mode.mode).toBe('playing');
    expect(h.mode.toggleAction).toBe('pause');
    // The stream said paused at a later time; an older answer does not take it back.
    const later = new Date(NOW + 5_000).toISOString();
    socket.receive({ type: 'replay', session: 'r1', status: viewBody({ updatedAt: later }) });
    expect(h.mode.mode).toBe('paused');
    next = accepted({ state: 'playing' });
    await h.mode.setSpeed('max');
    expect(h.requests.at(-1)).toMatchObject({ body: { action: 'speed', speed: 'max' } });
    expect(h.mode.mode).toBe('paused');
  });

  it("a step asks for one bar of the chart's interval, whichever it is", async () => {
    const h = harness((_m, path) => (path === '/replays' ? created() : accepted()));
    const socket = await h.started();
    await h.mode.step();
    expect(h.requests.at(-1)).toMatchObject({ body: { action: 'step', interval: '1m' } });
    await h.mode.changeInterval('30');
    expect(socket.sent.slice(-2)).toEqual([
      { type: 'unsubscribe', session: 'r1', symbol: 'BTC-USD', interval: '1m' },
      { type: 'subscribe', session: 'r1', symbol: 'BTC-USD', interval: '30m' },
    ]);
    await h.mode.step();
    expect(h.requests.at(-1)).toMatchObject({ body: { action: 'step', interval: '30m' } });
    await h.mode.changeInterval('1W');
    await h.mode.step();
    expect(h.requests.at(-1)).toMatchObject({ body: { action: 'step', interval: '1w' } });
    const steps = h.requests.filter((r) => (r.body as { action?: string }).action === 'step');
    expect(steps).toHaveLength(3);
  });

  it('an interval change loads the history before the start at it and resubscribes', async () => {
    const h = harness(() => created());
    const socket = await h.started();
    await h.mode.changeInterval('60');
    expect(h.shown.at(-1)).toEqual({ resolution: '60', end: FROM });
    expect(socket.sent.at(-1)).toEqual({
      type: 'subscribe',
      session: 'r1',
      symbol: 'BTC-USD',
      interval: '1h',
    });
  });

  it('a lost socket is opened again and subscribes again (the stream resends the bars)', async () => {
    const h = harness(() => created());
    const socket = await h.started();
    socket.drop();
    await h.clock.advanceAsync(1_000);
    expect(h.sockets.length).toBe(2);
    h.sockets[1]!.open();
    expect(h.sockets[1]!.sent).toEqual([
      { type: 'subscribe', session: 'r1', symbol: 'BTC-USD', interval: '1m' },
    ]);
  });

  it('without statuses it asks GET /replays/:id; a 404 is a session gone, said so', async () => {
    const h = harness((method, path) =>
      path === '/replays' ? created() : { status: 404, body: { error: 'unknown replay' } },
    );
    await h.started();
    await h.clock.advanceAsync(STATUS_POLL_MS);
    expect(h.requests.at(-1)).toEqual({ method: 'GET', path: '/replays/r1', body: undefined });
    expect(h.mode.mode).toBe('ended');
    expect(h.notices.at(-1)).toMatch(/gone/);
  });

  it('back to live ends the session, closes its socket and loads the live chart', async () => {
    const h = harness((_m, path) => (path === '/replays' ? created() : accepted()));
    const socket = await h.started();
    await h.mode.exit();
    expect(h.mode.mode).toBe('off');
    expect(h.requests.at(-1)).toEqual({
      method: 'POST',
      path: '/replays/r1',
      body: { action: 'end' },
    });
    expect(socket.closed).toBe(true);
    expect(h.live()).toBe(1);
    expect(h.clock.pendingTimers).toBe(0);
  });

  it('leaving while the session is being made ends it once it is made', async () => {
    const h = harness((_m, path) => (path === '/replays' ? created() : accepted()));
    h.mode.enter();
    const starting = h.mode.start(FROM);
    await h.mode.exit();
    await starting;
    expect(h.requests.map((r) => r.body)).toEqual([
      expect.objectContaining({ symbols: ['BTC-USD'] }),
      { action: 'end' },
    ]);
    expect(h.shown).toEqual([]);
    expect(h.sockets).toEqual([]);
  });
});
