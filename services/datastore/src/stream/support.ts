/** Small I/O helpers of the hub: upgrade refusals in the API's JSON error shape, frames, timeouts. */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AppErrorCode, Clock } from '@candlestream/core';
import { AppError, errorMessage, systemClock } from '@candlestream/core';
import type { RawData } from 'ws';

const STATUS_BY_CODE: Partial<Record<AppErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
};

export interface UpgradeRefusal {
  status: number;
  message: string;
  /** Seconds until a limited client may try again (the Retry-After header), when known. */
  retryAfterS?: number;
}

/** The HTTP status and client-facing message for an error thrown while admitting an upgrade. */
export function refusalFor(err: unknown): UpgradeRefusal {
  const status = AppError.is(err) ? (STATUS_BY_CODE[err.code] ?? 500) : 500;
  const retryAfterS = AppError.is(err) ? err.details?.['retryAfterS'] : undefined;
  // Internal failures stay in the log; the client learns only that it was not its fault.
  return {
    status,
    message: status >= 500 ? 'internal error' : errorMessage(err),
    ...(typeof retryAfterS === 'number' ? { retryAfterS } : {}),
  };
}

/**
 * Answers an upgrade request with a plain HTTP error, `{"error": …}` as the rest of the API does,
 * then closes the socket once the answer is written.
 */
export function refuseUpgrade(socket: Duplex, refusal: UpgradeRefusal): void {
  const { status, message, retryAfterS } = refusal;
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: message });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  if (status === 401) head.push('WWW-Authenticate: Bearer');
  if (retryAfterS !== undefined) head.push(`Retry-After: ${retryAfterS}`);
  socket.once('finish', () => socket.destroy());
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/** The path part of a request target (`/stream?token=…` → `/stream`). */
export function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  const query = target.indexOf('?');
  return query === -1 ? target : target.slice(0, query);
}

export function frameText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/**
 * Settles like `work`, or rejects with TIMEOUT after `ms` on `clock` or CANCELLED when `signal`
 * aborts, whichever comes first; the timer never outlives the call.
 */
export function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  signal: AbortSignal,
  what: string,
  clock: Clock = systemClock,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const finish = (settle: () => void): void => {
      clock.clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = (): void =>
      finish(() => reject(new AppError('CANCELLED', `${what} was cancelled`)));
    const timer = clock.setTimeout(
      () => finish(() => reject(new AppError('TIMEOUT', `${what} took over ${ms} ms`))),
      ms,
    );
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => finish(() => resolve(value)),
      (err: unknown) => finish(() => reject(AppError.from(err))),
    );
  });
}
