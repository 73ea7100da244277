import type { AppErrorCode } from '@candlestream/core';
import { AppError } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { ErrorRequestHandler, RequestHandler } from 'express';

/** The only place error codes become HTTP statuses (STYLE: map codes to statuses in the API). */
const STATUS: Record<AppErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  MALFORMED_MESSAGE: 400,
  INVALID_CONFIG: 500,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  CANCELLED: 503,
  INTERNAL: 500,
};

export function statusOf(err: AppError): number {
  return STATUS[err.code];
}

/** Paths answered in the UDF error shape, whatever the status (the datafeed reads the body). */
export function isUdfPath(path: string): boolean {
  return path === '/udf' || path.startsWith('/udf/');
}

/** Express's own parse errors (bad JSON body, oversized URL) and ours, as one AppError. */
function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const status = (err as { status?: unknown; statusCode?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError('INVALID_ARGUMENT', (err as Error).message || 'bad request');
  }
  if (isUnavailable(err))
    return new AppError('UNAVAILABLE', 'storage is unavailable; try again shortly', { cause: err });
  return AppError.from(err, 'INTERNAL');
}

/** Storage that cannot be reached (a connection error, or PostgreSQL shutting down or starting). */
function isUnavailable(err: unknown): boolean {
  const e = err as { name?: unknown; parent?: { code?: unknown }; code?: unknown };
  const raw = e.parent?.code ?? e.code;
  const code = typeof raw === 'string' ? raw : '';
  return (
    (typeof e.name === 'string' && e.name.startsWith('SequelizeConnection')) ||
    /^(08|57P0)/.test(code) ||
    code === 'ECONNREFUSED'
  );
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  const log = logger.child({ component: 'http' });
  return (err: unknown, req, res, _next) => {
    const error = toAppError(err);
    const status = statusOf(error);
    // Internal details stay in the log; the client gets a message it can act on.
    const message =
      status >= 500 && error.code !== 'UNAVAILABLE' ? 'internal error' : error.message;
    if (status >= 500)
      log.error('request failed', { method: req.method, path: req.path, err: error });
    const retryAfterS = error.details?.['retryAfterS'];
    if (typeof retryAfterS === 'number') res.setHeader('Retry-After', String(retryAfterS));
    if (res.headersSent) return;
    res
      .status(status)
      .json(isUdfPath(req.path) ? { s: 'error', errmsg: message } : { error: message });
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new AppError('NOT_FOUND', `no route ${req.method} ${req.path}`));
};
