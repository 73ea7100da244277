import { createServer, type Server, type Socket } from 'node:net';
import { AppError } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import { API_BY_KEY, API_VERSIONS_KEY, apiVersionsBody } from './apis/index.js';
import type { BrokerContext, RequestHeader } from './apis/types.js';
import { ErrorCode } from './protocol/errors.js';
import { readRequestHeader } from './protocol/header.js';
import { Reader } from './protocol/reader.js';
import { Writer } from './protocol/writer.js';

/** Largest request frame accepted; anything bigger closes that connection (socket.request.max.bytes). */
export const MAX_FRAME_BYTES = 100 * 1024 * 1024;
/** api_key + api_version + correlation_id + client_id length: no valid request is shorter. */
const MIN_FRAME_BYTES = 10;
/** Stop reading a socket once this many whole requests wait: bounded memory per client. */
const MAX_QUEUED_REQUESTS = 64;
const SIZE_PREFIX_BYTES = 4;

/**
 * One client connection. Requests are handled one at a time and answered in order, as a Kafka
 * broker does per connection; a parked request (long-poll Fetch, JoinGroup) holds back the ones
 * behind it. Writes respect socket backpressure: the next request is not started until the
 * previous response has drained, so a slow consumer cannot make the broker buffer without bound.
 */
class Connection {
  private readonly chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private readonly frames: Buffer[] = [];
  private processing = false;
  private paused = false;
  private readonly abort = new AbortController();
  private requests = 0;
  private readonly clientHost: string;

  constructor(
    readonly socket: Socket,
    private readonly ctx: BrokerContext,
    private readonly logger: Logger,
  ) {
    this.clientHost = socket.remoteAddress ?? '';
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.logger.debug('socket error', { err: err.message }));
    socket.on('close', () => {
      this.abort.abort();
      this.frames.length = 0;
      this.logger.debug('connection closed', { client: this.clientHost, requests: this.requests });
    });
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  close(reason: string, fields: Record<string, unknown> = {}): void {
    if (!this.socket.destroyed)
      this.logger.warn('closing connection', { reason, client: this.clientHost, ...fields });
    this.abort.abort();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    while (this.bufferedBytes >= SIZE_PREFIX_BYTES) {
      const size = this.peekSize();
      if (size < MIN_FRAME_BYTES || size > MAX_FRAME_BYTES) {
        this.close('bad frame size', { size, maxFrameBytes: MAX_FRAME_BYTES });
        return;
      }
      if (this.bufferedBytes < SIZE_PREFIX_BYTES + size) break;
      this.take(SIZE_PREFIX_BYTES);
      this.frames.push(this.take(size));
    }
    if (this.frames.length >= MAX_QUEUED_REQUESTS && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    void this.pump();
  }

  private peekSize(): number {
    const first = this.chunks[0] as Buffer;
    if (first.length >= SIZE_PREFIX_BYTES) return first.readInt32BE(0);
    return Buffer.concat(this.chunks).readInt32BE(0);
  }

  /** Removes `bytes` from the front of the buffered input, copying only when they span chunks. */
  private take(bytes: number): Buffer {
    this.bufferedBytes -= bytes;
    const first = this.chunks[0] as Buffer;
    if (first.length >= bytes) {
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
      return first.subarray(0, bytes);
    }
    const out = Buffer.allocUnsafe(bytes);
    let filled = 0;
    while (filled < bytes) {
      const chunk = this.chunks[0] as Buffer;
      const use = Math.min(chunk.length, bytes - filled);
      chunk.copy(out, filled, 0, use);
      filled += use;
      if (use === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(use);
    }
    return out;
  }

  private async pump(): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      for (
        let frame = this.frames.shift();
        frame && !this.socket.destroyed;
        frame = this.frames.shift()
      ) {
        await this.handle(frame);
        if (this.socket.writableNeedDrain) await this.drained();
        if (this.paused && this.frames.length < MAX_QUEUED_REQUESTS / 2) {
          this.paused = false;
          this.socket.resume();
        }
      }
    } finally {
      this.processing = false;
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private async handle(frame: Buffer): Promise<void> {
    this.requests++;
    const reader = new Reader(frame);
    let header: RequestHeader;
    try {
      header = readRequestHeader(reader);
    } catch {
      this.close('unreadable request header');
      return;
    }
    const api = API_BY_KEY.get(header.apiKey);
    if (!api || header.apiVersion < api.minVersion || header.apiVersion > api.maxVersion) {
      this.logger.warn('unsupported request', {
        apiKey: header.apiKey,
        apiVersion: header.apiVersion,
        clientId: header.clientId,
      });
      // ApiVersions gets its v0 layout so the client can downgrade (KIP-511); anything else gets
      // the bare error code, the nearest thing to an answer that every layout can start with.
      const body =
        header.apiKey === API_VERSIONS_KEY
          ? apiVersionsBody(0, ErrorCode.UNSUPPORTED_VERSION)
          : new Writer().int16(ErrorCode.UNSUPPORTED_VERSION);
      this.send(header.correlationId, body);
      return;
    }
    try {
      if (api.flexibleFrom !== undefined && header.apiVersion >= api.flexibleFrom)
        reader.skipTaggedFields();
      const body = await api.handle(this.ctx, {
        header,
        body: reader,
        clientHost: this.clientHost,
        signal: this.abort.signal,
      });
      if (body) this.send(header.correlationId, body);
    } catch (err) {
      if (AppError.is(err, 'MALFORMED_MESSAGE')) {
        this.close('malformed request', {
          api: api.name,
          apiVersion: header.apiVersion,
          err: err.message,
        });
      } else {
        this.logger.error('request failed', { api: api.name, apiVersion: header.apiVersion, err });
        this.close('internal error');
      }
    }
  }

  /** Response header v0 (correlation id only) for every response this broker sends. */
  private send(correlationId: number, body: Writer): void {
    if (this.socket.destroyed) return;
    const chunks = body.toChunks();
    const head = Buffer.allocUnsafe(8);
    head.writeInt32BE(4 + body.length, 0);
    head.writeInt32BE(correlationId, 4);
    this.socket.cork();
    this.socket.write(head);
    for (const chunk of chunks) this.socket.write(chunk);
    this.socket.uncork();
  }
}

export interface ListeningServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Accepts connections and gives each its own Connection; close() drops them all. */
export async function listen(
  ctx: BrokerContext,
  host: string,
  port: number,
  logger: Logger,
  onListening: (port: number) => void,
): Promise<ListeningServer> {
  const connections = new Set<Connection>();
  const server: Server = createServer((socket) => {
    const connection = new Connection(socket, ctx, logger);
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  onListening(boundPort);
  return {
    host,
    port: boundPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const connection of connections) {
          connection.socket.destroy();
        }
      }),
  };
}
