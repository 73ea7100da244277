/**
 * The /stream WebSocket hub: clients subscribe to (symbol, interval) series and get the current
 * bar, then every update: forming bars never go back in time, closed bars arrive final, once, in
 * order (protocol.ts `shouldSend`). One feed listener serves every client.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { BarUpdate, Clock, MarketSymbol } from '@candlestream/core';
import { AppError, errorMessage, systemClock, toIso } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { WebSocket } from 'ws';
import { WebSocketServer } from 'ws';
import type { ReplayView } from '../replays.js';
import type { HistoryEvent, LiveFeed, ReplayFeed } from './feed.js';
import type { HistoryMessage, ReplayMessage } from './protocol.js';
import type { SessionDeps } from './session.js';
import { SeriesIndex, Session } from './session.js';
import { pathOf, refusalFor, refuseUpgrade } from './support.js';

export interface StreamMetrics {
  /** The number of connected clients, after every change. */
  clients: (n: number) => void;
  /** How many more messages were sent (a counter increment). */
  messagesSent: (n: number) => void;
  /** One client dropped: `slow` or `heartbeat`. */
  dropped: (reason: string) => void;
}

export interface StreamOptions {
  /** Attach to this HTTP server (upgrade on `path`). */
  server: Server;
  /** Default '/stream'. */
  path?: string;
  feed: LiveFeed;
  /** Replay sessions' bars and statuses; without it, subscribing to a session is refused. */
  replays?: ReplayFeed;
  logger: Logger;
  /** Called with the upgrade request; throw AppError('UNAUTHENTICATED', …) to refuse with 401. */
  authenticate?: (req: IncomingMessage) => void | Promise<void>;
  /** Whether a symbol exists (unknown ones get an error message, the socket stays open). */
  isKnownSymbol: (symbol: MarketSymbol) => boolean | Promise<boolean>;
  /** Default 15 000: heartbeat message and ws ping; two unanswered pings end the client. */
  heartbeatIntervalMs?: number;
  /** Default 1 MiB: a client with more unsent bytes is dropped (close 1013), never buffered on. */
  maxBufferedBytes?: number;
  /** Default 4 KiB: a larger client frame closes the socket (1009). */
  maxFrameBytes?: number;
  /** Default 50. */
  maxSubscriptionsPerClient?: number;
  onMetrics?: StreamMetrics;
  /** Heartbeat times come from here; default the system clock. */
  clock?: Clock;
}

export interface StreamHub {
  /** Closes every client (1001), stops timers and the feed listener; idempotent. */
  close(): Promise<void>;
  clientCount(): number;
}

const DEFAULT_HEARTBEAT_INTERVAL_MS = 15_000;
const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const DEFAULT_MAX_FRAME_BYTES = 4 * 1024;
const DEFAULT_MAX_SUBSCRIPTIONS = 50;
/** A peer that never answers our close frame (a stalled reader) is cut off after this. */
const CLOSE_HANDSHAKE_TIMEOUT_MS = 2_000;
const CLOSE_GOING_AWAY = 1001;

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen <= 0) {
    throw new AppError('INVALID_ARGUMENT', `stream option ${name} must be a positive integer`);
  }
  return chosen;
}

export function attachStream(options: StreamOptions): StreamHub {
  const path = options.path ?? '/stream';
  if (!path.startsWith('/')) {
    throw new AppError('INVALID_ARGUMENT', 'stream path must start with /');
  }
  const heartbeatMs = positiveInteger(
    'heartbeatIntervalMs',
    options.heartbeatIntervalMs,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
  );
  const maxBufferedBytes = positiveInteger(
    'maxBufferedBytes',
    options.maxBufferedBytes,
    DEFAULT_MAX_BUFFERED_BYTES,
  );
  const maxFrameBytes = positiveInteger(
    'maxFrameBytes',
    options.maxFrameBytes,
    DEFAULT_MAX_FRAME_BYTES,
  );
  const maxSubscriptions = positiveInteger(
    'maxSubscriptionsPerClient',
    options.maxSubscriptionsPerClient,
    DEFAULT_MAX_SUBSCRIPTIONS,
  );
  const { server, feed } = options;
  const clock = options.clock ?? systemClock;
  const log = options.logger.child({ component: 'stream' });
  const sessions = new Map<Session, Promise<void>>();
  const index = new SeriesIndex();
  const pendingUpgrades = new Set<Duplex>();
  const droppedByReason = new Map<string, number>();
  let nextClientId = 1;
  let connections = 0;
  let messagesSent = 0;
  let shuttingDown = false;
  let closing: Promise<void> | undefined;

  // closeTimeout is a ws 8.23 option @types/ws does not list yet; passed via a variable for that.
  const wsOptions = {
    noServer: true,
    clientTracking: false,
    maxPayload: maxFrameBytes,
    closeTimeout: CLOSE_HANDSHAKE_TIMEOUT_MS,
  };
  const wss = new WebSocketServer(wsOptions);

  /** A metrics hook that throws must not take the hub down with it. */
  const metric = (call: (m: StreamMetrics) => void): void => {
    if (!options.onMetrics) return;
    try {
      call(options.onMetrics);
    } catch (err) {
      log.warn('metrics hook failed', { error: errorMessage(err) });
    }
  };

  const deps: SessionDeps = {
    feed,
    replays: options.replays,
    clock,
    isKnownSymbol: options.isKnownSymbol,
    index,
    log,
    maxBufferedBytes,
    maxFrameBytes,
    maxSubscriptions,
    onSent: () => {
      messagesSent++;
      metric((m) => m.messagesSent(1));
    },
    onDropped: (reason) => {
      droppedByReason.set(reason, (droppedByReason.get(reason) ?? 0) + 1);
      metric((m) => m.dropped(reason));
    },
  };

  const onUpdate = (update: BarUpdate): void => {
    try {
      index.dispatch(update);
    } catch (err) {
      log.error('update dispatch failed', { error: errorMessage(err) });
    }
  };

  const onHistory = (event: HistoryEvent): void => {
    const message: HistoryMessage = {
      type: 'history',
      symbol: event.symbol,
      backfill: { id: event.backfill.id, status: event.backfill.status },
      from: toIso(event.from),
      to: toIso(event.to),
    };
    let told = 0;
    for (const session of sessions.keys()) {
      try {
        if (!session.subscribesTo(event.symbol)) continue;
        session.announce(message);
        told++;
      } catch (err) {
        log.error('history announcement failed', { client: session.id, error: errorMessage(err) });
      }
    }
    log.info('history announced', { symbol: event.symbol, id: event.backfill.id, clients: told });
  };

  const onReplayUpdate = (session: string, update: BarUpdate): void => {
    try {
      index.dispatch(update, session);
    } catch (err) {
      log.error('replay dispatch failed', { session, error: errorMessage(err) });
    }
  };

  const onReplayStatus = (status: ReplayView): void => {
    let message: Buffer | undefined;
    for (const session of sessions.keys()) {
      try {
        if (!session.watchesReplay(status.id)) continue;
        message ??= Buffer.from(
          JSON.stringify({ type: 'replay', session: status.id, status } satisfies ReplayMessage),
        );
        session.announceFrame(message);
      } catch (err) {
        log.error('replay status failed', { client: session.id, error: errorMessage(err) });
      }
    }
  };

  const onConnection = (socket: WebSocket, req: IncomingMessage): void => {
    const session = new Session(nextClientId++, socket, deps);
    const closed = new Promise<void>((resolve) => {
      socket.on('close', (code, reason) => {
        session.detach();
        sessions.delete(session);
        resolve();
        metric((m) => m.clients(sessions.size));
        const why = reason.toString('utf8');
        log.info('client disconnected', {
          client: session.id,
          code,
          reason: why,
          sent: session.sent,
        });
      });
    });
    sessions.set(session, closed);
    connections++;
    socket.on('message', (data, isBinary) => {
      try {
        session.onFrame(data, isBinary);
      } catch (err) {
        log.error('frame handling failed', { client: session.id, error: errorMessage(err) });
      }
    });
    socket.on('pong', () => session.onPong());
    // Oversized frames (1009), protocol violations, resets: ws closes the socket itself.
    socket.on('error', (err) => {
      log.info('client socket error', { client: session.id, error: err.message });
    });
    metric((m) => m.clients(sessions.size));
    const remote = req.socket.remoteAddress;
    log.info('client connected', { client: session.id, remote, clients: sessions.size });
  };

  const admit = async (req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> => {
    pendingUpgrades.add(socket);
    try {
      if (options.authenticate && !shuttingDown) await options.authenticate(req);
      if (shuttingDown) throw new AppError('UNAVAILABLE', 'server is shutting down');
      if (socket.destroyed) return;
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
    } catch (err) {
      const refusal = refusalFor(err);
      const { status } = refusal;
      if (status >= 500) log.error('upgrade failed', { status, error: errorMessage(err) });
      else log.info('upgrade refused', { status, error: refusal.message });
      refuseUpgrade(socket, refusal);
    } finally {
      pendingUpgrades.delete(socket);
    }
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const ours = pathOf(req.url) === path;
    // Another upgrade listener serves other paths; alone, we answer them so none hangs.
    if (!ours && server.listenerCount('upgrade') > 1) return;
    // Node removes its own error listener from upgraded sockets; a reset must not crash us.
    socket.on('error', (err) => log.debug('upgrade socket error', { error: err.message }));
    if (ours) void admit(req, socket, head);
    else {
      refuseUpgrade(socket, {
        status: 404,
        message: `no WebSocket endpoint at ${pathOf(req.url).slice(0, 64)}`,
      });
    }
  };

  const heartbeat = (): void => {
    const time = toIso(clock.now());
    for (const session of sessions.keys()) {
      try {
        session.heartbeat(time);
      } catch (err) {
        log.error('heartbeat failed', { client: session.id, error: errorMessage(err) });
      }
    }
  };

  server.on('upgrade', onUpgrade);
  const stopFeed = feed.onUpdate(onUpdate);
  const stopHistory = feed.onHistory?.(onHistory);
  const stopReplayUpdates = options.replays?.onUpdate(onReplayUpdate);
  const stopReplayStatus = options.replays?.onStatus(onReplayStatus);
  const heartbeatTimer = clock.setInterval(heartbeat, heartbeatMs);

  const shutdown = async (): Promise<void> => {
    shuttingDown = true;
    clock.clearInterval(heartbeatTimer);
    stopFeed();
    stopHistory?.();
    stopReplayUpdates?.();
    stopReplayStatus?.();
    server.off('upgrade', onUpgrade);
    for (const socket of pendingUpgrades) socket.destroy();
    const open = [...sessions];
    for (const [session] of open) {
      session.close(CLOSE_GOING_AWAY, 'server shutting down');
    }
    // Bounded: ws destroys any socket whose peer ignores the close frame (closeTimeout).
    await Promise.all(open.map(([, closed]) => closed));
    wss.close();
    const dropped = Object.fromEntries(droppedByReason);
    log.info('stream closed', { clientsClosed: open.length, connections, messagesSent, dropped });
  };

  return {
    close: () => (closing ??= shutdown()),
    clientCount: () => sessions.size,
  };
}
