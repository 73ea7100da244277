/**
 * The one error type of the platform. `code` is a closed union so callers can switch on it
 * exhaustively; `retriable` tells a retry loop whether trying again can help (as kafkajs does).
 * Codes map to HTTP statuses only in the API layer.
 */
export type AppErrorCode =
  | 'INVALID_ARGUMENT'
  | 'INVALID_CONFIG'
  | 'MALFORMED_MESSAGE'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'RATE_LIMITED'
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'INTERNAL';

/** Codes whose failures are transient by nature; a caller may still override per instance. */
const RETRIABLE_BY_DEFAULT: ReadonlySet<AppErrorCode> = new Set<AppErrorCode>([
  'UNAVAILABLE',
  'TIMEOUT',
  'RATE_LIMITED',
]);

export interface AppErrorOptions {
  cause?: unknown;
  retriable?: boolean;
  /** Structured context for logs; never user secrets. */
  details?: Readonly<Record<string, unknown>>;
}

export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: AppErrorCode;
  readonly retriable: boolean;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: AppErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? RETRIABLE_BY_DEFAULT.has(code);
    this.details = options.details;
  }

  static is(value: unknown, code?: AppErrorCode): value is AppError {
    return value instanceof AppError && (code === undefined || value.code === code);
  }

  /** Wraps anything thrown into an AppError, keeping an AppError as it is. */
  static from(value: unknown, code: AppErrorCode = 'INTERNAL'): AppError {
    if (value instanceof AppError) return value;
    const message = value instanceof Error ? value.message : String(value);
    return new AppError(code, message, { cause: value });
  }
}

/** A one-line description of anything thrown or carried as an error, for logs and /health. */
export function errorMessage(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return 'unknown error';
  }
}

/** Thrown by parsers of user input; one place builds the message shape. */
export function invalidArgument(message: string, details?: Record<string, unknown>): AppError {
  return new AppError('INVALID_ARGUMENT', message, details ? { details } : {});
}
