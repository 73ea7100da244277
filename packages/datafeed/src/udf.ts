/**
 * The datastore's UDF endpoints over fetch, and the mapping of their answers (docs/API.md) into
 * TradingView's types. Every value is checked: a datafeed that hands the chart `undefined` prices
 * fails far from the cause.
 */
import type { Clock, TimerHandle } from '@candlestream/core';
import { errorMessage } from '@candlestream/core';
import type {
  Bar,
  DatafeedConfiguration,
  FetchLike,
  LibrarySymbolInfo,
  SearchSymbolResultItem,
} from './types.js';

const SECOND_MS = 1_000;

export class UdfError extends Error {
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(message);
    this.name = 'UdfError';
    this.status = status;
  }
}

export interface UdfClientOptions {
  baseUrl: string;
  token?: string;
  fetch: FetchLike;
  timeoutMs: number;
  /** The request deadlines run on it. */
  clock: Clock;
}

type Params = Record<string, string | number | undefined>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The server's `errmsg` (UDF paths answer errors as `{s:'error', errmsg}` whatever the status). */
function errmsgOf(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed) && typeof parsed['errmsg'] === 'string') return parsed['errmsg'];
  } catch {
    // Not JSON (a proxy's error page): the status will do.
  }
  return undefined;
}

export class UdfClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  /** Cancels of the requests under way: abort, clear the deadline, settle at once. */
  readonly #inFlight = new Set<() => void>();
  #closed = false;

  constructor(options: UdfClientOptions) {
    this.#base = `${options.baseUrl.replace(/\/+$/, '')}/udf/`;
    this.#headers = options.token ? { Authorization: `Bearer ${options.token}` } : {};
    this.#fetch = options.fetch;
    this.#timeoutMs = options.timeoutMs;
    this.#clock = options.clock;
  }

  /** GET /udf/<path>, the body as text; a failure of any kind is a UdfError saying what. */
  async text(path: string, params: Params = {}): Promise<string> {
    if (this.#closed) throw new UdfError('datafeed destroyed');
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined) query.set(key, String(value));
    }
    const search = query.toString();
    const url = `${this.#base}${path}${search ? `?${search}` : ''}`;
    const controller = new AbortController();
    const clock = this.#clock;
    let timer: TimerHandle | undefined;
    let cancel = (): void => undefined;
    // Raced rather than trusted to the abort signal: an injected fetch may ignore it.
    const deadline = new Promise<never>((_resolve, reject) => {
      const stop = (message: string): void => {
        clock.clearTimeout(timer);
        controller.abort();
        reject(new UdfError(message));
      };
      timer = clock.setTimeout(
        () => stop(`/udf/${path} did not answer within ${this.#timeoutMs} ms`),
        this.#timeoutMs,
      );
      cancel = () => stop('datafeed destroyed');
    });
    this.#inFlight.add(cancel);
    // Called detached: a native fetch called as a method of another object throws.
    const fetchImpl = this.#fetch;
    try {
      const response = await Promise.race([
        fetchImpl(url, { headers: this.#headers, signal: controller.signal }),
        deadline,
      ]);
      const body = await Promise.race([response.text(), deadline]);
      if (!response.ok) {
        throw new UdfError(errmsgOf(body) ?? `HTTP ${response.status}`, response.status);
      }
      return body;
    } catch (err) {
      if (this.#closed) throw new UdfError('datafeed destroyed');
      if (err instanceof UdfError) throw err;
      throw new UdfError(`/udf/${path} failed: ${errorMessage(err)}`);
    } finally {
      clock.clearTimeout(timer);
      this.#inFlight.delete(cancel);
    }
  }

  /** GET /udf/<path> as JSON; `{s:'error'}` bodies become a UdfError with the server's errmsg. */
  async json(path: string, params: Params = {}): Promise<unknown> {
    const text = await this.text(path, params);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new UdfError(`/udf/${path} answered something that is not JSON`);
    }
    if (isRecord(body) && body['s'] === 'error') {
      // A refusal in a 200: status 200 lets callers tell it from an outage.
      throw new UdfError(typeof body['errmsg'] === 'string' ? body['errmsg'] : 'error', 200);
    }
    return body;
  }

  /** Ends every request under way (no timer is left behind); later calls fail at once. */
  close(): void {
    this.#closed = true;
    for (const cancel of this.#inFlight) cancel();
    this.#inFlight.clear();
  }
}

function str(record: Record<string, unknown>, key: string, fallback: string): string {
  const value = record[key];
  return typeof value === 'string' ? value : fallback;
}

function num(record: Record<string, unknown>, key: string, fallback: number): number {
  const value = record[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

function optional<T>(key: string, value: T | undefined): Record<string, T> {
  return value === undefined ? {} : { [key]: value };
}

export function toConfiguration(body: unknown): DatafeedConfiguration {
  if (!isRecord(body)) throw new UdfError('/udf/config answered something that is not an object');
  const flags = [
    'supports_search',
    'supports_group_request',
    'supports_marks',
    'supports_timescale_marks',
    'supports_time',
  ] as const;
  const config: DatafeedConfiguration = {};
  for (const flag of flags) {
    if (typeof body[flag] === 'boolean') config[flag] = body[flag];
  }
  const resolutions = strings(body['supported_resolutions']);
  if (resolutions) config.supported_resolutions = resolutions;
  const records = (value: unknown): Record<string, unknown>[] =>
    Array.isArray(value) ? value.filter(isRecord) : [];
  if (Array.isArray(body['exchanges'])) {
    config.exchanges = records(body['exchanges']).map((e) => ({
      value: str(e, 'value', ''),
      name: str(e, 'name', ''),
      desc: str(e, 'desc', ''),
    }));
  }
  if (Array.isArray(body['symbols_types'])) {
    config.symbols_types = records(body['symbols_types']).map((t) => ({
      name: str(t, 'name', ''),
      value: str(t, 'value', ''),
    }));
  }
  return config;
}

/** `/udf/symbols` → LibrarySymbolInfo; the datastore's fields pass through, checked. */
export function toSymbolInfo(body: unknown): LibrarySymbolInfo {
  if (!isRecord(body) || typeof body['name'] !== 'string') {
    throw new UdfError('/udf/symbols answered no symbol name');
  }
  const name = body['name'];
  const exchange = str(body, 'exchange', '');
  const status = body['data_status'];
  return {
    name,
    ticker: str(body, 'ticker', name),
    full_name: str(body, 'full_name', exchange ? `${exchange}:${name}` : name),
    description: str(body, 'description', name),
    type: str(body, 'type', 'crypto'),
    session: str(body, 'session', '24x7'),
    timezone: str(body, 'timezone', 'Etc/UTC'),
    exchange,
    listed_exchange: str(body, 'listed_exchange', exchange),
    format: body['format'] === 'volume' ? 'volume' : 'price',
    minmov: num(body, 'minmov', 1),
    pricescale: num(body, 'pricescale', 100),
    has_intraday: body['has_intraday'] !== false,
    has_daily: body['has_daily'] !== false,
    has_weekly_and_monthly: body['has_weekly_and_monthly'] !== false,
    volume_precision: num(body, 'volume_precision', 8),
    data_status:
      status === 'endofday' || status === 'delayed_streaming' ? status : ('streaming' as const),
    // Daily and weekly bars exist only as 1D and 1W (core INTERVALS).
    daily_multipliers: ['1'],
    weekly_multipliers: ['1'],
    ...optional('supported_resolutions', strings(body['supported_resolutions'])),
    ...optional('intraday_multipliers', strings(body['intraday_multipliers'])),
    ...optional(
      'currency_code',
      typeof body['currency_code'] === 'string' ? body['currency_code'] : undefined,
    ),
  };
}

export function toSearchResults(body: unknown): SearchSymbolResultItem[] {
  if (!Array.isArray(body)) throw new UdfError('/udf/search answered something that is not a list');
  return body.filter(isRecord).map((item) => {
    const symbol = str(item, 'symbol', '');
    return {
      symbol,
      full_name: str(item, 'full_name', symbol),
      description: str(item, 'description', symbol),
      exchange: str(item, 'exchange', ''),
      ticker: str(item, 'ticker', symbol),
      type: str(item, 'type', 'crypto'),
    };
  });
}

export type History = { bars: Bar[] } | { bars: []; noData: true; nextTimeMs?: number };

/** `/udf/history` columns → fresh Bar objects, times in ms, ascending. */
export function toHistory(body: unknown): History {
  if (!isRecord(body)) throw new UdfError('/udf/history answered something that is not an object');
  if (body['s'] === 'no_data') {
    const next = body['nextTime'];
    return typeof next === 'number' && Number.isFinite(next)
      ? { bars: [], noData: true, nextTimeMs: next * SECOND_MS }
      : { bars: [], noData: true };
  }
  if (body['s'] !== 'ok') throw new UdfError(`/udf/history answered status ${String(body['s'])}`);
  const columns = ['t', 'o', 'h', 'l', 'c', 'v'].map((key) => body[key]);
  const [t, o, h, l, c, v] = columns;
  if (!Array.isArray(t) || !columns.every((col) => Array.isArray(col) && col.length === t.length)) {
    throw new UdfError('/udf/history answered columns of different lengths');
  }
  const bars: Bar[] = [];
  for (let i = 0; i < t.length; i++) {
    const values = [t, o, h, l, c, v].map((col) => (col as unknown[])[i]);
    if (!values.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new UdfError(`/udf/history bar ${i} has a value that is not a number`);
    }
    const [time, open, high, low, close, volume] = values as number[];
    bars.push({
      time: time! * SECOND_MS,
      open: open!,
      high: high!,
      low: low!,
      close: close!,
      volume: volume!,
    });
  }
  // The server promises strictly ascending times; the chart breaks if that ever fails.
  for (let i = 1; i < bars.length; i++) {
    if (bars[i]!.time <= bars[i - 1]!.time) {
      throw new UdfError('/udf/history answered bars out of order');
    }
  }
  return { bars };
}
