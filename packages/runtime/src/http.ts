import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { Metrics } from './metrics.js';

export type HealthStatus = 'ok' | 'degraded' | 'down';

/** The contract's `/health` body. */
export interface HealthReport {
  status: HealthStatus;
  service: string;
  /** The actor's current state, e.g. `running.streaming`. */
  state: string;
  checks: Record<string, unknown>;
}

export interface OpsServerOptions extends ListenOptions {
  logger: Logger;
  metrics: Metrics;
  health: () => HealthReport;
}

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * `/health` and `/metrics` for a service without an API of its own (producer, consumers).
 * `down` answers 503 so an orchestrator's probe fails; `degraded` still answers 200.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'application/json', JSON.stringify({ error: 'only GET is served here' }));
    } else if (path === '/health') {
      const report = options.health();
      send(res, report.status === 'down' ? 503 : 200, 'application/json', JSON.stringify(report));
    } else if (path === '/metrics') {
      options.metrics.scrape().then(
        (text) => send(res, 200, options.metrics.contentType, text),
        (err: unknown) =>
          send(res, 500, 'application/json', JSON.stringify({ error: String(err) })),
      );
    } else {
      send(res, 404, 'application/json', JSON.stringify({ error: `no route ${path}` }));
    }
  });
  const listening = await listen(server, options);
  options.logger.info('ops endpoints listening', {
    port: listening.port,
    paths: ['/health', '/metrics'],
  });
  return listening;
}

export interface ListenOptions {
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** Which variable set the port, for the "already in use" message. */
  portVariable?: string;
}

/**
 * Starts `server` listening. A port already in use is an INVALID_CONFIG error naming the variable
 * to change (one clear line, not a stack trace). `close` is idempotent and drops open connections.
 */
export async function listen(server: Server, options: ListenOptions): Promise<OpsServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const variable = options.portVariable ?? 'the port setting';
      reject(
        err.code === 'EADDRINUSE'
          ? new AppError(
              'INVALID_CONFIG',
              `port ${options.port} is already in use; set ${variable} to a free port`,
            )
          : err,
      );
    });
    server.listen(options.port, options.host ?? '0.0.0.0', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}
