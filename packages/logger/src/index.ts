import type { Writable } from 'node:stream';
import winston from 'winston';

/** Levels from most to least severe; the contract's LOG_LEVEL takes `error`…`debug`. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry `fields`; by convention `{ component }`. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** The service name on every line. */
  service: string;
  level?: LogLevel;
  /** No output at all (tests, unless they want it). */
  silent?: boolean;
  /** Where lines go; default standard output. */
  stream?: Writable;
}

const LEVEL_NUMBERS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
/** Fields every line starts with, in this order, so lines read well to a person too. */
const LEADING_KEYS = ['timestamp', 'level', 'service', 'component', 'msg'] as const;

/** Errors do not survive JSON.stringify; keep what an operator needs, including AppError fields. */
function serializeError(err: Error): LogFields {
  const out: LogFields = { name: err.name, message: err.message };
  const extra = err as Error & { code?: unknown; retriable?: unknown; details?: unknown };
  if (extra.code !== undefined) out['code'] = extra.code;
  if (extra.retriable !== undefined) out['retriable'] = extra.retriable;
  if (extra.details !== undefined) out['details'] = extra.details;
  if (err.stack) out['stack'] = err.stack;
  if (err.cause !== undefined)
    out['cause'] = err.cause instanceof Error ? serializeError(err.cause) : err.cause;
  return out;
}

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return serializeError(value);
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** Renders one info object as one JSON line: leading keys first, then the rest as given. */
export function formatLine(info: LogFields): string {
  const ordered: LogFields = {};
  for (const key of LEADING_KEYS) if (info[key] !== undefined) ordered[key] = info[key];
  for (const [key, value] of Object.entries(info)) {
    if (key === 'message' || key in ordered) continue;
    ordered[key] = value;
  }
  try {
    return JSON.stringify(ordered, replacer);
  } catch {
    // A circular field must not take the line with it.
    return JSON.stringify({
      timestamp: ordered['timestamp'],
      level: ordered['level'],
      service: ordered['service'],
      component: ordered['component'],
      msg: ordered['msg'],
      logError: 'fields could not be serialised',
    });
  }
}

const lineFormat = winston.format.combine(
  winston.format.timestamp(),
  winston.format((info) => {
    // winston calls the text `message`; our lines call it `msg`.
    info['msg'] = info.message;
    return info;
  })(),
  winston.format.printf((info) => formatLine(info)),
);

function wrap(inner: winston.Logger): Logger {
  return {
    error: (msg, fields) => void inner.error(msg, fields),
    warn: (msg, fields) => void inner.warn(msg, fields),
    info: (msg, fields) => void inner.info(msg, fields),
    debug: (msg, fields) => void inner.debug(msg, fields),
    child: (fields) => wrap(inner.child(fields)),
  };
}

export function createLogger(options: LoggerOptions): Logger {
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  const inner = winston.createLogger({
    levels: LEVEL_NUMBERS,
    level: options.level ?? 'info',
    silent: options.silent ?? false,
    defaultMeta: { service: options.service },
    format: lineFormat,
    transports: [transport],
  });
  return wrap(inner);
}

/** A logger that drops everything: the default for code under test. */
export function silentLogger(): Logger {
  return createLogger({ service: 'test', silent: true });
}

/** One line a recordingLogger kept. */
export interface LogLine {
  level: LogLevel;
  msg: string;
  fields: LogFields | undefined;
}

/**
 * A logger that keeps its lines in memory (a child's go to the same list), for tests that
 * check what was said.
 */
export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void => {
      lines.push({ level, msg, fields });
    };
  const logger: Logger = {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    child: () => logger,
  };
  return { logger, lines };
}

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}
