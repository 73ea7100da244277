import {
  BACKFILL_STATUSES,
  INTERVALS,
  MAX_REPLAY_SPEED,
  MIN_REPLAY_SPEED,
  REPLAY_SESSION_STATES,
  RESOLUTIONS,
} from '@candlestream/core';

const errorBody = {
  type: 'object',
  properties: { error: { type: 'string' } },
  required: ['error'],
};
const udfError = {
  type: 'object',
  properties: { s: { const: 'error' }, errmsg: { type: 'string' } },
  required: ['s', 'errmsg'],
};
const bar = {
  type: 'object',
  properties: {
    time: { type: 'string', format: 'date-time', description: 'open time of the UTC bucket' },
    open: { type: 'number' },
    high: { type: 'number' },
    low: { type: 'number' },
    close: { type: 'number' },
    volume: { type: 'number' },
  },
  required: ['time', 'open', 'high', 'low', 'close', 'volume'],
};
/** What the source could not provide of a job (`stored`: the coarser candles kept instead). */
const unavailableRange = {
  type: 'object',
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    reason: { type: 'string' },
    stored: { enum: ['1h', '1d'] },
  },
};
const backfillHandle = {
  type: 'object',
  description:
    'the backfill this request started or joined, when the range reached missing history',
  properties: {
    id: { type: 'string' },
    status: { enum: BACKFILL_STATUSES },
    unavailable: {
      type: 'array',
      description: 'after ?wait saw the job end: what the source could not provide',
      items: unavailableRange,
    },
  },
  required: ['id', 'status'],
};
const isoOrNull = { type: ['string', 'null'], format: 'date-time' };
const backfillJob = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    symbol: { type: 'string' },
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    status: { enum: BACKFILL_STATUSES },
    progress: {
      type: 'object',
      description: 'minutes of the missing ranges stored so far, of all of them',
      properties: { done: { type: 'integer' }, total: { type: 'integer' } },
    },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    startedAt: isoOrNull,
    finishedAt: isoOrNull,
    error: { type: ['string', 'null'] },
    unavailable: {
      type: 'array',
      description: 'what the source could not provide, and why',
      items: unavailableRange,
    },
    requestedBy: { type: ['string', 'null'] },
  },
  required: ['id', 'symbol', 'from', 'to', 'status', 'progress', 'createdAt', 'updatedAt'],
};
const speed = {
  oneOf: [
    { type: 'number', minimum: MIN_REPLAY_SPEED, maximum: MAX_REPLAY_SPEED },
    { const: 'max' },
  ],
  description: 'simulated seconds per second, or max: as fast as the broker takes them',
};
const replaySession = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    state: { enum: REPLAY_SESSION_STATES },
    symbols: { type: 'array', items: { type: 'string' } },
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    speed,
    simTime: { ...isoOrNull, description: 'every trade before it has been replayed' },
    percent: { type: 'number', minimum: 0, maximum: 100 },
    messages: { type: 'integer', description: 'trades published so far' },
    topic: { type: 'string', description: 'replay.<id>: the session trades' },
    reason: { enum: ['done', 'quit', 'idle', null], description: 'why it ended' },
    error: {
      type: ['string', 'null'],
      description: 'why it failed, e.g. the simulator stopped, and where the replay stopped',
    },
    updatedAt: { type: 'string', format: 'date-time' },
  },
  required: ['id', 'state', 'symbols', 'from', 'to', 'speed', 'simTime', 'messages', 'topic'],
};
const json = (schema: unknown) => ({ 'application/json': { schema } });
const param = (name: string, description: string, schema: unknown, required = false) => ({
  name,
  in: 'query',
  required,
  description,
  schema,
});
const commonErrors = {
  '400': { description: 'bad input', content: json(errorBody) },
  '401': { description: 'AUTH_MODE=jwt and no valid Bearer token', content: json(errorBody) },
  '404': { description: 'unknown symbol', content: json(errorBody) },
  '429': { description: 'rate limited; see Retry-After', content: json(errorBody) },
};
const udfErrors = {
  '400': { description: 'bad input', content: json(udfError) },
  '404': { description: 'unknown symbol', content: json(udfError) },
};

/** The API description served at /openapi.json (OpenAPI 3.1). */
export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Candlestream datastore',
    version: '1',
    description:
      'OHLCV candles of crypto trades: history, the TradingView UDF protocol, and a live WebSocket stream at /stream.',
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
  },
  paths: {
    '/ohlcv': {
      get: {
        summary: 'Bars of one symbol and interval, history merged with the forming bar',
        security: [{ bearer: [] }],
        parameters: [
          param('symbol', 'BTC-USD (also BTCUSD, BTC/USD, btc-usd)', { type: 'string' }, true),
          param('interval', 'an interval or a TradingView resolution (1D, 60…); default 1m', {
            enum: [...INTERVALS, ...RESOLUTIONS, 'D', 'W'],
          }),
          param(
            'startDate',
            'inclusive; ISO-8601 or 13-digit epoch ms, 2009-01-03 .. 2100-01-01; required without limit',
            { type: 'string' },
          ),
          param('endDate', 'exclusive, as startDate; default now', { type: 'string' }),
          param(
            'limit',
            'at most this many bars, the newest in range (without startDate: the newest)',
            {
              type: 'integer',
              minimum: 1,
            },
          ),
          param(
            'wait',
            'ms (0..30000): when the range starts a backfill, wait for it and answer with what it stored',
            { type: 'integer', minimum: 0, maximum: 30_000 },
          ),
        ],
        responses: {
          '200': {
            description:
              'bars, ascending; gzip with Accept-Encoding: gzip. An answer of closed buckets only has a strong ETag and Cache-Control immutable',
            headers: {
              ETag: { schema: { type: 'string' }, description: 'send back as If-None-Match' },
              'Cache-Control': {
                schema: { type: 'string' },
                description:
                  '`public, max-age=86400, immutable` on an answer of closed buckets only',
              },
            },
            content: json({
              type: 'object',
              properties: {
                symbol: { type: 'string' },
                interval: { enum: INTERVALS },
                bars: { type: 'array', items: bar },
                partial: { type: 'boolean', description: 'the last bar is still forming' },
                backfill: backfillHandle,
              },
            }),
          },
          '304': { description: 'If-None-Match named the answer: it has not changed' },
          ...commonErrors,
        },
      },
    },
    '/backfills': {
      post: {
        summary: 'Ask for history the database lacks; 202 with the queued job (docs/BACKFILLS.md)',
        security: [{ bearer: [] }],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            properties: {
              symbol: { type: 'string' },
              from: { type: ['string', 'integer'], description: 'ISO-8601 or 13-digit epoch ms' },
              to: {
                type: ['string', 'integer'],
                description: 'exclusive, after from, at most 400 days later',
              },
            },
            required: ['symbol', 'from', 'to'],
          }),
        },
        responses: {
          '202': { description: 'the job, queued', content: json(backfillJob) },
          ...commonErrors,
          '503': { description: 'the broker did not take the request', content: json(errorBody) },
        },
      },
      get: {
        summary: 'The newest backfill jobs first',
        security: [{ bearer: [] }],
        parameters: [
          param('symbol', 'only this symbol', { type: 'string' }),
          param('limit', 'default 50, at most 500', { type: 'integer', minimum: 1, maximum: 500 }),
        ],
        responses: {
          '200': {
            description: 'jobs',
            content: json({
              type: 'object',
              properties: { backfills: { type: 'array', items: backfillJob } },
            }),
          },
          ...commonErrors,
        },
      },
    },
    '/backfills/{id}': {
      get: {
        summary: 'One backfill job: status, progress, what the source could not provide',
        security: [{ bearer: [] }],
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the job', content: json(backfillJob) },
          '404': { description: 'no such job', content: json(errorBody) },
        },
      },
    },
    '/replays': {
      post: {
        summary:
          'Create a replay session of stored history, paused at from (docs/REPLAY.md); the simulator hosts it',
        security: [{ bearer: [] }],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            properties: {
              symbols: {
                oneOf: [
                  { type: 'array', items: { type: 'string' } },
                  { type: 'string', description: 'comma-separated' },
                ],
              },
              from: { type: ['string', 'integer'], description: 'ISO-8601 or 13-digit epoch ms' },
              to: {
                type: ['string', 'integer'],
                description: 'exclusive; default now; at most 366 days after from',
              },
              speed: { ...speed, default: 1 },
            },
            required: ['symbols', 'from'],
          }),
        },
        responses: {
          '201': { description: 'the session, paused', content: json(replaySession) },
          ...commonErrors,
          '503': {
            description: 'the simulator did not answer (not running) or the broker is away',
            content: json(errorBody),
          },
        },
      },
    },
    '/replays/{id}': {
      get: {
        summary: 'One replay session: state, simulated time, progress',
        security: [{ bearer: [] }],
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the session', content: json(replaySession) },
          '404': { description: 'no such session', content: json(errorBody) },
        },
      },
      post: {
        summary: 'Control a replay session: play, pause, step one bar, seek, speed, end',
        security: [{ bearer: [] }],
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            properties: {
              action: { enum: ['play', 'pause', 'step', 'seek', 'speed', 'end'] },
              interval: {
                enum: INTERVALS,
                default: '1m',
                description:
                  'step: publish the rest of the current bar of this interval, then stay paused',
              },
              to: {
                type: ['string', 'integer'],
                description: 'seek: the next trade is the first at or after it',
              },
              speed,
            },
            required: ['action'],
          }),
        },
        responses: {
          '202': {
            description: 'the session as known when the command was sent',
            content: json(replaySession),
          },
          '400': { description: 'bad input', content: json(errorBody) },
          '404': { description: 'no such session', content: json(errorBody) },
          '409': { description: 'the session has ended or failed', content: json(errorBody) },
          '503': { description: 'the broker did not take the command', content: json(errorBody) },
        },
      },
    },
    '/udf/config': {
      get: {
        summary: 'UDF datafeed configuration',
        responses: { '200': { description: 'config' } },
      },
    },
    '/udf/symbols': {
      get: {
        summary: 'UDF symbol info (no `s` key on success)',
        parameters: [
          param('symbol', 'symbol, optionally EXCHANGE:SYMBOL', { type: 'string' }, true),
        ],
        responses: { '200': { description: 'symbol info' }, ...udfErrors },
      },
    },
    '/udf/search': {
      get: {
        summary: 'UDF symbol search (a bare array)',
        parameters: [
          param('query', 'text to find', { type: 'string' }),
          param('limit', 'default 30', { type: 'integer' }),
        ],
        responses: { '200': { description: 'matches' } },
      },
    },
    '/udf/history': {
      get: {
        summary: 'UDF bars: from inclusive, to exclusive (epoch seconds); countback takes priority',
        parameters: [
          param('symbol', 'symbol', { type: 'string' }, true),
          param('resolution', 'one of the supported resolutions', { enum: RESOLUTIONS }, true),
          param('from', 'epoch seconds, inclusive', { type: 'integer' }, true),
          param('to', 'epoch seconds, exclusive', { type: 'integer' }, true),
          param('countback', 'exactly this many bars before `to` when history has them', {
            type: 'integer',
          }),
        ],
        responses: {
          '200': { description: '{s:"ok",t,o,h,l,c,v} or {s:"no_data",nextTime?}' },
          ...udfErrors,
        },
      },
    },
    '/udf/time': {
      get: {
        summary: 'server time, epoch seconds (text)',
        responses: { '200': { description: 'time' } },
      },
    },
    '/stream': {
      get: {
        summary:
          'WebSocket: send {"type":"subscribe","symbol","interval"}; receive {"type":"bar",symbol,interval,bar,final}. With "session": a replay session bars, and {"type":"replay",session,status} on every status',
        responses: { '101': { description: 'switching protocols' } },
      },
    },
    '/health': {
      get: {
        summary: '{status, service, state, checks}',
        responses: { '200': { description: 'ok or degraded' }, '503': { description: 'down' } },
      },
    },
    '/metrics': {
      get: { summary: 'Prometheus text', responses: { '200': { description: 'metrics' } } },
    },
  },
} as const;

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** /docs: the same description as a page, rendered here (no script fetched from anywhere). */
export function docsPage(): string {
  const rows = Object.entries(OPENAPI.paths)
    .flatMap(([path, ops]) =>
      Object.entries(
        ops as Record<
          string,
          {
            summary: string;
            parameters?: readonly { name: string; required: boolean; description?: string }[];
          }
        >,
      ).map(([method, op]) => {
        const params = (op.parameters ?? [])
          .map(
            (p) =>
              `<li><code>${escape(p.name)}</code>${p.required ? ' (required)' : ''}: ${escape(p.description ?? '')}</li>`,
          )
          .join('');
        return `<h2><code>${method.toUpperCase()} ${escape(path)}</code></h2><p>${escape(op.summary)}</p>${params ? `<ul>${params}</ul>` : ''}`;
      }),
    )
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Candlestream API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}</style></head>
<body><h1>Candlestream API</h1><p>${escape(OPENAPI.info.description)} Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>
${rows}</body></html>`;
}
