import type { Bar, EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { invalidArgument, RESOLUTIONS, splitSymbol, toResolution } from '@candlestream/core';
import type { Router } from 'express';
import { Router as createRouter } from 'express';
import Joi from 'joi';
import type { Logger } from '@candlestream/logger';
import type { BackfillDesk } from '../backfills.js';
import type { BarService } from '../bars.js';
import type { SymbolRegistry } from '../symbols.js';
import { backfillOnMiss } from './ohlcv.js';
import { rules, unknownSymbol, validateQuery } from './params.js';

/** The exchange name TradingView shows beside every symbol. */
export const EXCHANGE = 'Candlestream';
const SEARCH_LIMIT_MAX = 100;
const INTRADAY: Interval[] = ['1m', '5m', '15m', '30m', '1h', '4h'];

/** Decimal places of a price, from the newest close (BTC 2, a cent coin 6), as UDF pricescale. */
function priceScale(close: number | undefined): number {
  if (close === undefined || !(close > 0)) return 100;
  const decimals = Math.min(8, Math.max(2, 4 - Math.floor(Math.log10(close))));
  return 10 ** decimals;
}

function symbolInfo(symbol: MarketSymbol, lastClose: number | undefined): Record<string, unknown> {
  const { base, quote } = splitSymbol(symbol);
  return {
    name: symbol,
    ticker: symbol,
    full_name: `${EXCHANGE}:${symbol}`,
    description: `${base} / ${quote}`,
    type: 'crypto',
    session: '24x7',
    timezone: 'Etc/UTC',
    exchange: EXCHANGE,
    listed_exchange: EXCHANGE,
    minmov: 1,
    pricescale: priceScale(lastClose),
    has_intraday: true,
    has_daily: true,
    has_weekly_and_monthly: true,
    intraday_multipliers: INTRADAY.map(toResolution),
    supported_resolutions: RESOLUTIONS,
    volume_precision: 8,
    currency_code: quote,
    data_status: 'streaming',
    format: 'price',
  };
}

/** TradingView may send `EXCHANGE:SYMBOL`; the exchange is always ours, so it is dropped. */
function withoutExchange(query: Record<string, unknown>): Record<string, unknown> {
  const symbol = query['symbol'];
  return typeof symbol === 'string' ? { ...query, symbol: symbol.replace(/^[^:]*:/, '') } : query;
}

function seconds(ms: EpochMs): number {
  return Math.floor(ms / 1_000);
}

function historyBody(bars: readonly Bar[]): Record<string, unknown> {
  return {
    s: 'ok',
    t: bars.map((b) => seconds(b.time)),
    o: bars.map((b) => b.open),
    h: bars.map((b) => b.high),
    l: bars.map((b) => b.low),
    c: bars.map((b) => b.close),
    v: bars.map((b) => b.volume),
  };
}

/**
 * The TradingView UDF protocol, so `new Datafeeds.UDFCompatibleDatafeed('<host>/udf')` works
 * unchanged. Success bodies of `symbols` carry no `s` key and `search` is a bare array, as the
 * datafeed expects; errors are `{s:'error', errmsg}` (see errors.ts).
 */
export function udfRouter(deps: {
  bars: BarService;
  symbols: SymbolRegistry;
  now: () => EpochMs;
  backfills?: BackfillDesk | undefined;
  logger?: Logger | undefined;
}): Router {
  const router = createRouter();
  const lastClose = async (symbol: MarketSymbol): Promise<number | undefined> =>
    (await deps.bars.last(symbol, '1d', 1, deps.now() + 1))[0]?.close;

  router.get('/udf/config', (_req, res) => {
    res.json({
      supports_search: true,
      supports_group_request: false,
      supports_marks: false,
      supports_timescale_marks: false,
      supports_time: true,
      supported_resolutions: RESOLUTIONS,
      exchanges: [{ value: EXCHANGE, name: EXCHANGE, desc: EXCHANGE }],
      symbols_types: [{ name: 'crypto', value: 'crypto' }],
    });
  });

  router.get('/udf/time', (_req, res) => {
    res.type('text/plain').send(String(seconds(deps.now())));
  });

  const symbolSchema = Joi.object<{ symbol: MarketSymbol }>({ symbol: rules.symbol().required() });
  router.get('/udf/symbols', async (req, res) => {
    const { symbol } = validateQuery(symbolSchema, withoutExchange(req.query));
    if (!(await deps.symbols.has(symbol))) throw unknownSymbol(symbol);
    res.json(symbolInfo(symbol, await lastClose(symbol)));
  });

  const searchSchema = Joi.object<{
    query: string;
    limit: number;
    type?: string;
    exchange?: string;
  }>({
    query: Joi.string().allow('').max(64).default(''),
    limit: rules.count(SEARCH_LIMIT_MAX).default(30),
    type: Joi.string().allow('').max(32),
    exchange: Joi.string().allow('').max(64),
  });
  router.get('/udf/search', async (req, res) => {
    const { query, limit } = validateQuery(searchSchema, req.query);
    const needle = query.toUpperCase().replace(/[^A-Z0-9]/g, '');
    const matches = (await deps.symbols.list()).filter((s) => s.replace('-', '').includes(needle));
    res.json(
      matches.slice(0, limit).map((symbol) => {
        const { base, quote } = splitSymbol(symbol);
        return {
          symbol,
          full_name: `${EXCHANGE}:${symbol}`,
          description: `${base} / ${quote}`,
          exchange: EXCHANGE,
          ticker: symbol,
          type: 'crypto',
        };
      }),
    );
  });

  interface HistoryQuery {
    symbol: MarketSymbol;
    resolution: Interval;
    from: EpochMs;
    to: EpochMs;
    countback?: number;
  }
  const historySchema = Joi.object<HistoryQuery>({
    symbol: rules.symbol().required(),
    resolution: rules.resolution().required(),
    from: rules.seconds().required(),
    to: rules.seconds().required(),
    countback: rules.count(deps.bars.maxBars),
  });
  router.get('/udf/history', async (req, res) => {
    const q = validateQuery(historySchema, withoutExchange(req.query));
    if (q.to < q.from) throw invalidArgument('to must not be before from');
    if (!(await deps.symbols.has(q.symbol))) throw unknownSymbol(q.symbol);
    // countback takes priority over from: exactly that many bars before `to`, when history has them.
    const bars =
      q.countback !== undefined
        ? await deps.bars.last(q.symbol, q.resolution, q.countback, q.to)
        : (
            await deps.bars.range(q.symbol, q.resolution, q.from, q.to, undefined, {
              limitName: 'countback',
            })
          ).bars;
    // Only started here, never waited for: the answer stays plain UDF; /stream's `history`
    // message tells the page when the range can be read again.
    await backfillOnMiss(deps, q.symbol, q.from, q.to, 'chart');
    if (bars.length > 0) {
      res.json(historyBody(bars));
      return;
    }
    const earlier = await deps.bars.previousBarTime(q.symbol, q.resolution, q.from);
    res.json(
      earlier === undefined ? { s: 'no_data' } : { s: 'no_data', nextTime: seconds(earlier) },
    );
  });

  return router;
}
