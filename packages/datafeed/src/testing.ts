/**
 * A recorded datastore for unit tests: UDF answers captured from `/udf/*` (shapes as in
 * docs/API.md) served by a fake fetch, and a fake WebSocket the test opens, feeds and drops.
 */
import { parseSymbol } from '@candlestream/core';
import type { FetchLike, WebSocketLike } from './types.js';

/** 2024-06-10T12:00:00Z in epoch seconds: the first recorded 1m bar. */
export const T0_S = 1_718_020_800;
const MINUTE_S = 60;

/** Recorded answers (BTC-USD, 1m) of a datastore with SYMBOLS=BTC-USD,ETH-USD. */
export const RECORDED = {
  config: {
    supports_search: true,
    supports_group_request: false,
    supports_marks: false,
    supports_timescale_marks: false,
    supports_time: true,
    supported_resolutions: ['1', '5', '15', '30', '60', '240', '1D', '1W'],
    exchanges: [{ value: 'Candlestream', name: 'Candlestream', desc: 'Candlestream' }],
    symbols_types: [{ name: 'crypto', value: 'crypto' }],
  },
  symbols: {
    name: 'BTC-USD',
    ticker: 'BTC-USD',
    full_name: 'Candlestream:BTC-USD',
    description: 'BTC / USD',
    type: 'crypto',
    session: '24x7',
    timezone: 'Etc/UTC',
    exchange: 'Candlestream',
    listed_exchange: 'Candlestream',
    minmov: 1,
    pricescale: 100,
    has_intraday: true,
    has_daily: true,
    has_weekly_and_monthly: true,
    intraday_multipliers: ['1', '5', '15', '30', '60', '240'],
    supported_resolutions: ['1', '5', '15', '30', '60', '240', '1D', '1W'],
    volume_precision: 8,
    currency_code: 'USD',
    data_status: 'streaming',
    format: 'price',
  },
  search: [
    {
      symbol: 'BTC-USD',
      full_name: 'Candlestream:BTC-USD',
      description: 'BTC / USD',
      exchange: 'Candlestream',
      ticker: 'BTC-USD',
      type: 'crypto',
    },
    {
      symbol: 'ETH-USD',
      full_name: 'Candlestream:ETH-USD',
      description: 'ETH / USD',
      exchange: 'Candlestream',
      ticker: 'ETH-USD',
      type: 'crypto',
    },
  ],
  /** Six 1m bars, 12:00 to 12:05. */
  history: {
    s: 'ok',
    t: [0, 1, 2, 3, 4, 5].map((i) => T0_S + i * MINUTE_S),
    o: [69512.5, 69530.1, 69498.75, 69470.0, 69488.2, 69521.0],
    h: [69540.0, 69533.0, 69502.1, 69495.5, 69525.0, 69560.25],
    l: [69505.0, 69490.0, 69460.3, 69466.0, 69480.0, 69515.5],
    c: [69530.1, 69498.75, 69470.0, 69488.2, 69521.0, 69552.4],
    v: [12.50321, 8.1107, 15.2093, 6.0012, 9.87654, 4.321],
  },
  time: String(T0_S + 6 * MINUTE_S),
} as const;

export interface FakeAnswer {
  status?: number;
  /** JSON-encoded unless a string. */
  body: unknown;
}

type Handler = (url: URL) => FakeAnswer | Error;

function historyAnswer(url: URL): FakeAnswer {
  const q = url.searchParams;
  const symbol = parseSymbol((q.get('symbol') ?? '').replace(/^[^:]*:/, ''));
  const { t } = RECORDED.history;
  const columns = ['t', 'o', 'h', 'l', 'c', 'v'] as const;
  const from = Number(q.get('from'));
  const to = Number(q.get('to'));
  const countback = q.get('countback');
  let index = t.map((_, i) => i).filter((i) => t[i]! < to);
  if (symbol !== 'BTC-USD' || q.get('resolution') !== '1') index = [];
  else if (countback !== null) index = index.slice(-Number(countback));
  else index = index.filter((i) => t[i]! >= from);
  if (index.length > 0) {
    const body: Record<string, unknown> = { s: 'ok' };
    for (const c of columns) body[c] = index.map((i) => RECORDED.history[c][i]);
    return { body };
  }
  const earlier = symbol === 'BTC-USD' ? t.filter((time) => time < from).at(-1) : undefined;
  return { body: earlier === undefined ? { s: 'no_data' } : { s: 'no_data', nextTime: earlier } };
}

/** A fake datastore behind fetch: the recorded answers, unless a test overrides a path. */
export class FakeUdfServer {
  readonly requests: { url: URL; headers: Record<string, string> }[] = [];
  readonly #overrides = new Map<string, Handler>();

  /** Answers `/udf/<path>` with `handler` from now on (an Error = the network failed). */
  override(path: string, handler: Handler): void {
    this.#overrides.set(path, handler);
  }

  /** The requests made to `/udf/<path>`. */
  requestsTo(path: string): URL[] {
    return this.requests.filter((r) => r.url.pathname === `/udf/${path}`).map((r) => r.url);
  }

  readonly fetch: FetchLike = (url, init) => {
    const parsed = new URL(url);
    this.requests.push({ url: parsed, headers: { ...init.headers } });
    const path = parsed.pathname.replace(/^\/udf\//, '');
    const answer = (this.#overrides.get(path) ?? ((u: URL) => this.#recorded(path, u)))(parsed);
    if (answer instanceof Error) return Promise.reject(answer);
    const status = answer.status ?? 200;
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    return Promise.resolve({ ok: status < 400, status, text: () => Promise.resolve(text) });
  };

  #recorded(path: string, url: URL): FakeAnswer {
    switch (path) {
      case 'config':
        return { body: RECORDED.config };
      case 'time':
        return { body: RECORDED.time };
      case 'search': {
        const query = (url.searchParams.get('query') ?? '').toUpperCase();
        return { body: RECORDED.search.filter((item) => item.symbol.includes(query)) };
      }
      case 'symbols': {
        const raw = url.searchParams.get('symbol') ?? '';
        const known = RECORDED.search.find((item) => {
          try {
            return parseSymbol(raw.replace(/^[^:]*:/, '')) === item.symbol;
          } catch {
            return false;
          }
        });
        if (!known) return { status: 404, body: { s: 'error', errmsg: `unknown symbol ${raw}` } };
        const { symbol, full_name, description } = known;
        return {
          body: { ...RECORDED.symbols, name: symbol, ticker: symbol, full_name, description },
        };
      }
      case 'history':
        return historyAnswer(url);
      default:
        return { status: 404, body: { s: 'error', errmsg: `no route /udf/${path}` } };
    }
  }
}

/** A WebSocket the test drives: `open()`, `receive()`, `drop()`. */
export class FakeWebSocket implements WebSocketLike {
  readyState = 0;
  /** Frames the datafeed sent, parsed. */
  readonly sent: unknown[] = [];
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;

  constructor(readonly url: string) {}

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: not open');
    this.sent.push(JSON.parse(data));
  }

  close(code?: number, reason?: string): void {
    this.readyState = 3;
    this.closedWith = { code, reason };
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(message: unknown): void {
    this.onmessage?.({ data: typeof message === 'string' ? message : JSON.stringify(message) });
  }

  /** The connection is lost (server restart, network): error, then close. */
  drop(code = 1006): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code, reason: '' });
  }
}

/** Hands the datafeed FakeWebSockets and keeps each one it made. */
export class FakeSocketFactory {
  readonly sockets: FakeWebSocket[] = [];
  readonly WebSocket = ((factory: FakeSocketFactory) =>
    class extends FakeWebSocket {
      constructor(url: string) {
        super(url);
        factory.sockets.push(this);
      }
    })(this);

  get last(): FakeWebSocket {
    const socket = this.sockets.at(-1);
    if (!socket) throw new Error('no socket was opened');
    return socket;
  }
}
