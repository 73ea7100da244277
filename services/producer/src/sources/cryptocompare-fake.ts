/**
 * A local stand-in for CryptoCompare, for tests only: the streamer (WebSocket API v2) at
 * `ws://127.0.0.1:<port>/v2` and `GET /data/v2/histominute|histohour|histoday` on the same port.
 * It answers as the real service does: TYPE 20 welcome, 16/3 after SubAdd, 500 INVALID_SUB for a
 * pair the exchange does not list, 999 heartbeats every 30 s by default, 401 for a bad key,
 * 500 FORCE_DISCONNECT before it drops a socket, TYPE 0 trades; REST Success answers, in-body
 * Error answers, HTTP 429 with the rate-limit body, the refusal of minutes (or hours) beyond the
 * history kept, and rows converted through another pair unless `tryConversion=false`. Tests drive it:
 * push trades, stop or speed up heartbeats (on the clock they pass), drop sockets, script REST
 * failures, read what was asked.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock, EpochMs, TimerHandle } from '@candlestream/core';
import { SECOND_MS, systemClock } from '@candlestream/core';
import type { WebSocket } from 'ws';
import { WebSocketServer } from 'ws';
import { frameText } from './cryptocompare-protocol.js';
import type { CcCandle, CcMinuteCandle, CcResolution } from './cryptocompare-rest.js';

export interface FakeCryptoCompareOptions {
  /** The one key accepted (WebSocket `api_key`, REST `authorization: Apikey …`). */
  apiKey?: string;
  /** Trades re-sent on every SubAdd, per subscription, like the real server. Default 20. */
  replayTrades?: number;
  /** The streamer's is 30 to 60 s; default 30 s. 0: heartbeats only when a test sends them. */
  heartbeatIntervalMs?: number;
  /** Whose timers the heartbeats run on; default systemClock. */
  clock?: Clock;
  /**
   * Markets the streamer lists, `Exchange~BASE~QUOTE`; a trade subscription to another is
   * refused with INVALID_SUB. Default Coinbase BTC-USD and ETH-USD; `setMinutes` adds its own.
   */
  markets?: readonly string[];
}

export interface FakeTrade {
  base: string;
  quote: string;
  exchange?: string;
  id: string | number;
  tsMs: EpochMs;
  price: number;
  size: number;
  /** F bitmask; default 2 (buy). */
  flags?: number;
  /** Send TSNS (default true); without it only whole seconds reach the client. */
  withNanos?: boolean;
}

export interface FakeRestRequest {
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
}

/**
 * `rate-limit`: HTTP 429 with the vendor's rate-limit body; `rate-limit-in-body`: the same body
 * with HTTP 200, as older answers had it.
 */
export type FakeRestFailure =
  'rate-limit' | 'rate-limit-in-body' | 'http-500' | 'bad-shape' | 'invalid-key';

export interface FakeCryptoCompare {
  readonly wsUrl: string;
  readonly restUrl: string;
  /** Every history request (histominute, histohour, histoday), in order. */
  readonly restRequests: readonly FakeRestRequest[];
  /** Every subscription string received, in order. */
  readonly subscriptions: readonly string[];
  connectionsOpened(): number;
  openSockets(): number;
  heartbeatsSent(): number;
  pushTrade(trade: FakeTrade): void;
  /** Sends text as it is to every open socket (malformed frames). */
  sendRaw(text: string): void;
  sendHeartbeat(): void;
  setHeartbeatInterval(ms: number): void;
  /** Terminates every open socket, as a network failure would. */
  dropConnections(): void;
  /** Sends TYPE 500 FORCE_DISCONNECT to every open socket, then closes it, as the server does. */
  forceDisconnect(info?: string): void;
  /** Lists a market on the streamer (trade subscriptions to it are accepted). */
  addMarket(exchange: string, base: string, quote: string): void;
  /** New sockets are terminated right after the welcome (never subscribed). */
  setDropOnConnect(drop: boolean): void;
  /** Answer WebSocket upgrades with this HTTP status instead; undefined to accept again. */
  setUpgradeStatus(status: number | undefined): void;
  /** The minute series histominute serves for a pair on an exchange (and lists the market). */
  setMinutes(exchange: string, base: string, quote: string, candles: CcMinuteCandle[]): void;
  /** The series histohour or histoday serves; `time` on the hour or at 00:00 UTC. */
  setCandles(
    resolution: CcResolution,
    exchange: string,
    base: string,
    quote: string,
    candles: CcCandle[],
  ): void;
  /**
   * A pair the exchange does not list, which the REST API would derive through `via`: served as
   * converted rows only to requests without `tryConversion=false`.
   */
  setConvertedMinutes(
    exchange: string,
    base: string,
    quote: string,
    via: string,
    candles: CcMinuteCandle[],
  ): void;
  /**
   * The oldest minute histominute keeps (epoch seconds; the real one keeps ~7 days): a page
   * newer than it is cut there, an older one refused. undefined (default): everything is kept.
   */
  setMinuteHistoryStart(sec: number | undefined): void;
  /**
   * The oldest hour histohour keeps (epoch seconds, on the hour), as `setMinuteHistoryStart`
   * for minutes: older hours are refused with BEYOND_HOUR_HISTORY_MESSAGE. undefined (default):
   * every hour is kept.
   */
  setHourHistoryStart(sec: number | undefined): void;
  /** The next `count` history calls (any of the three endpoints) fail this way. */
  failNextRest(kind: FakeRestFailure, count?: number): void;
  /** Idempotent. */
  close(): Promise<void>;
}

const TRADE_SUB_RE = /^0~([^~]+)~([^~]+)~([^~]+)$/;
const NANOS_PER_MS = 1_000_000;
const STEP_SEC: Record<CcResolution, number> = { minute: 60, hour: 3_600, day: 86_400 };
const PATHS: Record<string, CcResolution> = {
  '/data/v2/histominute': 'minute',
  '/data/v2/histohour': 'hour',
  '/data/v2/histoday': 'day',
};
export const DEFAULT_FAKE_HEARTBEAT_INTERVAL_MS = 30_000;
const DEFAULT_MARKETS = ['Coinbase~BTC~USD', 'Coinbase~ETH~USD'];
const MARKET_DOES_NOT_EXIST = 'cccagg_or_exchange_market_does_not_exist';
/** Our stand-in for the refusal of minutes older than the history kept. */
export const BEYOND_MINUTE_HISTORY_MESSAGE =
  'histominute data is only available for the last 7 days; use histohour or histoday for older data';
/**
 * Our stand-in for the refusal of hours older than the history kept (the vendor documents no
 * such limit for its paid tiers; a plan or a pair may still have one), worded like the minute one.
 */
export const BEYOND_HOUR_HISTORY_MESSAGE =
  'histohour data is only available for the last 2000 days; use histoday for older data';
const BEYOND_HISTORY_MESSAGES: Partial<Record<CcResolution, string>> = {
  minute: BEYOND_MINUTE_HISTORY_MESSAGE,
  hour: BEYOND_HOUR_HISTORY_MESSAGE,
};

const RATE_LIMIT_BODY = {
  Response: 'Error',
  Message: 'You are over your rate limit please upgrade your account!',
  HasWarning: false,
  Type: 99,
  RateLimit: {
    calls_made: { second: 21, minute: 21, hour: 21, day: 21, month: 21, total_calls: 21 },
    max_calls: { second: 20, minute: 300, hour: 3000, day: 10000, month: 75000 },
  },
  Data: {},
};
const INVALID_KEY_BODY = {
  Response: 'Error',
  Message: 'You need a valid auth key or api key to access this endpoint',
  HasWarning: false,
  Type: 1,
  RateLimit: {},
  Data: {},
};

function errorBody(message: string, type: number): unknown {
  return { ...INVALID_KEY_BODY, Message: message, Type: type };
}

function emptyCandle(time: number, close: number): CcMinuteCandle {
  return { time, open: close, high: close, low: close, close, volumefrom: 0, volumeto: 0 };
}

export async function startFakeCryptoCompare(
  options: FakeCryptoCompareOptions = {},
): Promise<FakeCryptoCompare> {
  const apiKey = options.apiKey ?? 'test-api-key';
  const replayTrades = options.replayTrades ?? 20;
  const restRequests: FakeRestRequest[] = [];
  const subscriptions: string[] = [];
  const subsBySocket = new Map<WebSocket, Set<string>>();
  const history = new Map<string, string[]>();
  /** `resolution~exchange~BASE~QUOTE` → candles, ascending. */
  const series = new Map<string, CcCandle[]>();
  const converted = new Map<string, { via: string; candles: CcCandle[] }>();
  const markets = new Set(options.markets ?? DEFAULT_MARKETS);
  const clock = options.clock ?? systemClock;
  const failures: FakeRestFailure[] = [];
  /** The oldest bar each endpoint keeps, epoch seconds; absent: all of them. */
  const historyStartSec: Partial<Record<CcResolution, number>> = {};
  let connectionsOpened = 0;
  let heartbeatsSent = 0;
  let heartbeatTimer: TimerHandle | undefined;
  let dropOnConnect = false;
  let upgradeStatus: number | undefined;
  let closing: Promise<void> | undefined;

  const send = (socket: WebSocket, message: unknown): void => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  };

  const onSubAdd = (socket: WebSocket, subs: unknown): void => {
    const mine = subsBySocket.get(socket);
    if (!mine || !Array.isArray(subs)) return;
    for (const sub of subs as unknown[]) {
      const match = typeof sub === 'string' ? TRADE_SUB_RE.exec(sub) : null;
      if (
        typeof sub !== 'string' ||
        !match ||
        !markets.has(`${match[1]}~${match[2]}~${match[3]}`)
      ) {
        send(socket, {
          TYPE: '500',
          MESSAGE: 'INVALID_SUB',
          PARAMETER: String(sub),
          INFO: 'We only support subscriptions to markets the exchange lists.',
        });
        continue;
      }
      subscriptions.push(sub);
      mine.add(sub);
      for (const frame of history.get(sub) ?? []) socket.send(frame);
      send(socket, { TYPE: '16', MESSAGE: 'SUBSCRIBECOMPLETE', SUB: sub });
    }
    send(socket, {
      TYPE: '3',
      MESSAGE: 'LOADCOMPLETE',
      INFO: 'All your valid subs have been loaded.',
    });
  };

  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    connectionsOpened++;
    socket.on('error', () => undefined);
    const key = new URL(request.url ?? '/', 'http://fake').searchParams.get('api_key');
    if (key !== apiKey) {
      send(socket, {
        TYPE: '401',
        MESSAGE: 'UNAUTHORIZED',
        PARAMETER: 'api_key',
        INFO: 'We only support JSON format with a valid api_key.',
      });
      socket.close();
      return;
    }
    subsBySocket.set(socket, new Set());
    socket.on('close', () => subsBySocket.delete(socket));
    send(socket, {
      TYPE: '20',
      MESSAGE: 'STREAMERWELCOME',
      SERVER_NAME: 'fake-streamer',
      SERVER_TIME_MS: clock.now(),
      DATA_FORMAT: 'JSON',
    });
    if (dropOnConnect) {
      socket.terminate();
      return;
    }
    socket.on('message', (data) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(frameText(data));
      } catch {
        send(socket, { TYPE: '500', MESSAGE: 'INVALID_JSON', PARAMETER: '', INFO: '' });
        return;
      }
      const action = parsed as { action?: unknown; subs?: unknown };
      if (action.action === 'SubAdd') onSubAdd(socket, action.subs);
    });
  });

  const historyAnswer = (resolution: CcResolution, query: Record<string, string>): unknown => {
    const stepSec = STEP_SEC[resolution];
    const limit = Number(query['limit'] ?? 1440);
    const toTs = Number(query['toTs'] ?? Math.floor(clock.now() / SECOND_MS));
    const pair = `${query['e'] ?? 'CCCAGG'}~${query['fsym']}~${query['tsym']}`;
    let rowsOf = series.get(`${resolution}~${pair}`);
    let conversion = { type: 'direct', symbol: '' };
    const derived = resolution === 'minute' ? converted.get(pair) : undefined;
    if (!rowsOf && derived && query['tryConversion'] !== 'false') {
      rowsOf = derived.candles;
      conversion = { type: 'multiply', symbol: derived.via };
    }
    if (!rowsOf) return errorBody(MARKET_DOES_NOT_EXIST, 2);
    const endSec = Math.floor(toTs / stepSec) * stepSec;
    let startSec = endSec - limit * stepSec;
    const keptFromSec = historyStartSec[resolution];
    const beyond = BEYOND_HISTORY_MESSAGES[resolution];
    if (keptFromSec !== undefined && beyond !== undefined) {
      // A page reaching past the history kept is cut there; one entirely older is refused.
      if (endSec < keptFromSec) return errorBody(beyond, 2);
      startSec = Math.max(startSec, keptFromSec);
    }
    const byTime = new Map(rowsOf.map((c) => [c.time, c]));
    const listedSec = rowsOf[0]?.time ?? Number.POSITIVE_INFINITY;
    // Before the listing: all zeros; a bar without trades: flat at the previous close.
    let lastClose = 0;
    for (const c of rowsOf) if (c.time < startSec) lastClose = c.close;
    const data: CcCandle[] = [];
    for (let t = startSec; t <= endSec; t += stepSec) {
      const c = byTime.get(t) ?? (t < listedSec ? emptyCandle(t, 0) : emptyCandle(t, lastClose));
      lastClose = c.close;
      data.push(c);
    }
    const rows = data.map((c) => ({
      ...c,
      conversionType: conversion.type,
      conversionSymbol: conversion.symbol,
    }));
    return {
      Response: 'Success',
      Message: '',
      HasWarning: false,
      Type: 100,
      RateLimit: {},
      Data: { Aggregated: false, TimeFrom: startSec, TimeTo: endSec, Data: rows },
    };
  };

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    const reply = (status: number, body: unknown): void => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const resolution = PATHS[url.pathname];
    if (!resolution) return reply(404, { Response: 'Error' });
    const authorization = request.headers.authorization;
    restRequests.push({
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization,
    });
    const failure = failures.shift();
    if (failure === 'rate-limit') return reply(429, RATE_LIMIT_BODY);
    if (failure === 'rate-limit-in-body') return reply(200, RATE_LIMIT_BODY);
    if (failure === 'http-500') return reply(500, 'internal error');
    if (failure === 'bad-shape') return reply(200, { Response: 'Success', Data: { Data: 'nope' } });
    if (failure === 'invalid-key' || authorization !== `Apikey ${apiKey}`) {
      return reply(200, INVALID_KEY_BODY);
    }
    return reply(200, historyAnswer(resolution, Object.fromEntries(url.searchParams)));
  });
  server.on('upgrade', (request: IncomingMessage, socket, head) => {
    const url = new URL(request.url ?? '/', 'http://fake');
    if (upgradeStatus !== undefined || url.pathname !== '/v2') {
      const status = upgradeStatus ?? 404;
      socket.end(`HTTP/1.1 ${status} Refused\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const fake: FakeCryptoCompare = {
    wsUrl: `ws://127.0.0.1:${port}/v2`,
    restUrl: `http://127.0.0.1:${port}`,
    restRequests,
    subscriptions,
    connectionsOpened: () => connectionsOpened,
    openSockets: () => wss.clients.size,
    heartbeatsSent: () => heartbeatsSent,
    pushTrade(trade) {
      const exchange = trade.exchange ?? 'Coinbase';
      const sub = `0~${exchange}~${trade.base}~${trade.quote}`;
      const seconds = Math.floor(trade.tsMs / SECOND_MS);
      const frame = JSON.stringify({
        TYPE: '0',
        M: exchange,
        FSYM: trade.base,
        TSYM: trade.quote,
        F: String(trade.flags ?? 2),
        ID: String(trade.id),
        TS: seconds,
        Q: trade.size,
        P: trade.price,
        TOTAL: trade.size * trade.price,
        RTS: seconds,
        ...(trade.withNanos === false
          ? {}
          : { TSNS: (trade.tsMs - seconds * SECOND_MS) * NANOS_PER_MS, RTSNS: 0 }),
      });
      const kept = [...(history.get(sub) ?? []), frame].slice(-replayTrades);
      history.set(sub, kept);
      for (const [socket, subs] of subsBySocket) if (subs.has(sub)) socket.send(frame);
    },
    sendRaw(text) {
      for (const socket of wss.clients) socket.send(text);
    },
    sendHeartbeat() {
      for (const socket of wss.clients) {
        send(socket, { TYPE: '999', MESSAGE: 'HEARTBEAT', TIMEMS: clock.now() });
        heartbeatsSent++;
      }
    },
    setHeartbeatInterval(ms) {
      clock.clearInterval(heartbeatTimer);
      heartbeatTimer = ms > 0 ? clock.setInterval(() => fake.sendHeartbeat(), ms) : undefined;
    },
    dropConnections() {
      for (const socket of wss.clients) socket.terminate();
    },
    forceDisconnect(info = 'The server is restarting, please reconnect.') {
      for (const socket of wss.clients) {
        send(socket, { TYPE: '500', MESSAGE: 'FORCE_DISCONNECT', PARAMETER: '', INFO: info });
        socket.close();
      }
    },
    addMarket(exchange, base, quote) {
      markets.add(`${exchange}~${base}~${quote}`);
    },
    setDropOnConnect(drop) {
      dropOnConnect = drop;
    },
    setUpgradeStatus(status) {
      upgradeStatus = status;
    },
    setMinutes(exchange, base, quote, candles) {
      fake.setCandles('minute', exchange, base, quote, candles);
    },
    setCandles(resolution, exchange, base, quote, candles) {
      markets.add(`${exchange}~${base}~${quote}`);
      series.set(
        `${resolution}~${exchange}~${base}~${quote}`,
        [...candles].sort((a, b) => a.time - b.time),
      );
    },
    setConvertedMinutes(exchange, base, quote, via, candles) {
      converted.set(`${exchange}~${base}~${quote}`, {
        via,
        candles: [...candles].sort((a, b) => a.time - b.time),
      });
    },
    setMinuteHistoryStart(sec) {
      if (sec === undefined) delete historyStartSec.minute;
      else historyStartSec.minute = sec;
    },
    setHourHistoryStart(sec) {
      if (sec === undefined) delete historyStartSec.hour;
      else historyStartSec.hour = sec;
    },
    failNextRest(kind, count = 1) {
      for (let i = 0; i < count; i++) failures.push(kind);
    },
    close() {
      closing ??= (async () => {
        clock.clearInterval(heartbeatTimer);
        for (const socket of wss.clients) socket.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        server.closeAllConnections();
        await new Promise<void>((resolve, reject) =>
          server.close((err) => (err ? reject(err) : resolve())),
        );
      })();
      return closing;
    },
  };
  fake.setHeartbeatInterval(options.heartbeatIntervalMs ?? DEFAULT_FAKE_HEARTBEAT_INTERVAL_MS);
  return fake;
}
