import type { EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { invalidArgument, toIso } from '@candlestream/core';
import type { Router } from 'express';
import { Router as createRouter } from 'express';
import Joi from 'joi';
import type { BarService } from '../bars.js';
import type { SymbolRegistry } from '../symbols.js';
import { rules, unknownSymbol, validateQuery } from './params.js';

interface OhlcvQuery {
  symbol: MarketSymbol;
  interval: Interval;
  startDate?: EpochMs;
  endDate?: EpochMs;
  limit?: number;
}

/**
 * `GET /ohlcv`: startDate inclusive, endDate exclusive (default now), interval default 1m; with
 * `limit` and no startDate, the newest `limit` bars before endDate.
 */
export function ohlcvRouter(deps: {
  bars: BarService;
  symbols: SymbolRegistry;
  now: () => EpochMs;
}): Router {
  const schema = Joi.object<OhlcvQuery>({
    symbol: rules.symbol().required(),
    interval: rules.interval().default('1m'),
    startDate: rules.instant(),
    endDate: rules.instant(),
    limit: rules.count(deps.bars.maxBars),
  });
  const router = createRouter();
  router.get('/ohlcv', async (req, res) => {
    const q = validateQuery(schema, req.query);
    const end = q.endDate ?? deps.now();
    if (q.startDate === undefined && q.limit === undefined) {
      throw invalidArgument('startDate is required unless limit is given (the newest limit bars)');
    }
    if (q.startDate !== undefined && q.startDate >= end) {
      throw invalidArgument(`startDate ${toIso(q.startDate)} must be before endDate ${toIso(end)}`);
    }
    if (!(await deps.symbols.has(q.symbol))) throw unknownSymbol(q.symbol);
    const { bars, partial } = await deps.bars.range(
      q.symbol,
      q.interval,
      q.startDate ?? Number.NEGATIVE_INFINITY,
      end,
      q.limit,
    );
    res.json({
      symbol: q.symbol,
      interval: q.interval,
      bars: bars.map((b) => ({
        time: toIso(b.time),
        open: b.open,
        high: b.high,
        low: b.low,
        close: b.close,
        volume: b.volume,
      })),
      partial,
    });
  });
  return router;
}
