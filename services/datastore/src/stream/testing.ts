/**
 * Test fixtures for the /stream hub: an in-memory LiveFeed driven by the test, a JSON WebSocket
 * client that records what it is sent, and a raw TCP client that can stop reading.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import type { BarUpdate, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import { createLogger } from '@candlestream/logger';
import type { ClientOptions } from 'ws';
import { WebSocket } from 'ws';
import type { HistoryEvent, LiveFeed } from './feed.js';

const POLL_MS = 5;
const DEFAULT_WAIT_MS = 5_000;

/** Polls `condition` until it holds; fails after `timeoutMs` naming what it waited for. */
export async function waitUntil(
  condition: () => boolean,
  what: string,
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** Settles like `work`, or fails after `timeoutMs`, so a hang fails fast instead of timing out. */
export async function within<T>(
  work: Promise<T>,
  what: string,
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A real (winston JSON) logger whose lines the test can read back, parsed. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: createLogger({ service: 'test', level: 'debug', stream }), lines };
}

export function barUpdate(
  symbol: string,
  interval: Interval,
  time: EpochMs,
  close: number,
  final = false,
): BarUpdate {
  const bar = { time, open: close, high: close, low: close, close, volume: 1 };
  return { v: 1, symbol: symbol as MarketSymbol, interval, bar, final };
}

/** A LiveFeed whose updates the test pushes; `holdCurrent` makes current() wait for a release. */
export class FakeFeed implements LiveFeed {
  readonly currentCalls: string[] = [];
  readonly #listeners = new Set<(update: BarUpdate) => void>();
  readonly #historyListeners = new Set<(event: HistoryEvent) => void>();
  readonly #current = new Map<string, BarUpdate>();
  #hold: Promise<void> | undefined;

  setCurrent(update: BarUpdate): void {
    this.#current.set(`${update.symbol} ${update.interval}`, update);
  }

  /** current() answers only after the returned function is called, with the value set by then. */
  holdCurrent(): () => void {
    let release = (): void => undefined;
    this.#hold = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.#hold = undefined;
      release();
    };
  }

  async current(symbol: MarketSymbol, interval: Interval): Promise<BarUpdate | undefined> {
    const key = `${symbol} ${interval}`;
    this.currentCalls.push(key);
    if (this.#hold) await this.#hold;
    return this.#current.get(key);
  }

  onUpdate(listener: (update: BarUpdate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onHistory(listener: (event: HistoryEvent) => void): () => void {
    this.#historyListeners.add(listener);
    return () => this.#historyListeners.delete(listener);
  }

  pushHistory(event: HistoryEvent): void {
    for (const listener of this.#historyListeners) listener(event);
  }

  listenerCount(): number {
    return this.#listeners.size;
  }

  push(...updates: BarUpdate[]): void {
    for (const update of updates) for (const listener of this.#listeners) listener(update);
  }
}

/** What the hub sends, loosely typed for assertions. */
export interface StreamMessage {
  type: string;
  symbol?: string;
  interval?: string;
  error?: string;
  time?: string;
  final?: boolean;
  bar?: { time: string; open: number; high: number; low: number; close: number; volume: number };
  backfill?: { id: string; status: string };
  from?: string;
  to?: string;
}

export class TestClient {
  readonly messages: StreamMessage[] = [];
  pings = 0;
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')) as StreamMessage);
    });
    ws.on('ping', () => this.pings++);
    ws.on('error', () => undefined);
    ws.on('close', (code) => (this.closeCode = code));
  }

  static async open(url: string, options?: ClientOptions): Promise<TestClient> {
    const client = new TestClient(new WebSocket(url, options));
    await new Promise<void>((resolve, reject) => {
      client.ws.once('open', () => resolve());
      client.ws.once('error', reject);
    });
    return client;
  }

  /** The close code, once the socket has closed . */
  async waitClosed(): Promise<number> {
    await waitUntil(() => this.closeCode !== undefined, 'the socket to close');
    return this.closeCode ?? 0;
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  subscribe(symbol: string, interval: string): void {
    this.send({ type: 'subscribe', symbol, interval });
  }

  isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  /** Waits for the first message at index `from` or later that matches; returns its index. */
  async waitFor(
    match: (m: StreamMessage) => boolean,
    from = 0,
    what = 'a message',
  ): Promise<number> {
    let found = -1;
    await waitUntil(() => {
      found = this.messages.findIndex((m, i) => i >= from && match(m));
      return found !== -1;
    }, what);
    return found;
  }

  /** Round-trips a ping, so every answer to what was sent before it has arrived. */
  async sync(): Promise<void> {
    const from = this.messages.length;
    this.send({ type: 'ping' });
    await this.waitFor((m) => m.type === 'pong', from, 'pong');
  }

  bars(symbol?: string): StreamMessage[] {
    return this.messages.filter((m) => m.type === 'bar' && (!symbol || m.symbol === symbol));
  }

  close(): void {
    this.ws.terminate();
  }
}

/** A client frame: text, masked as RFC 6455 requires of clients; payloads under 126 bytes. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  if (payload.length >= 126) throw new Error('raw client frames are kept short');
  const mask = randomBytes(4);
  const masked = payload.map((byte, i) => byte ^ mask[i % 4]!);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** A WebSocket client on a bare TCP socket, so a test decides when (whether) it reads. */
export class RawClient {
  readonly #chunks: Buffer[] = [];
  #received = 0;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.#received += chunk.length;
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number, path: string): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    const client = new RawClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await waitUntil(() => client.text().includes('\r\n\r\n'), 'the upgrade answer');
    if (!client.text().startsWith('HTTP/1.1 101')) throw new Error(`refused: ${client.text()}`);
    return client;
  }

  get received(): number {
    return this.#received;
  }

  /** Everything received so far as latin1 text (only for the small early part). */
  text(): string {
    return Buffer.concat(this.#chunks).toString('latin1');
  }

  /** The last `n` bytes received. */
  tail(n: number): Buffer {
    const last: Buffer[] = [];
    let size = 0;
    for (let i = this.#chunks.length - 1; i >= 0 && size < n; i--) {
      last.unshift(this.#chunks[i]!);
      size += this.#chunks[i]!.length;
    }
    return Buffer.concat(last).subarray(-n);
  }

  sendText(text: string): void {
    this.socket.write(maskedTextFrame(text));
  }
}
