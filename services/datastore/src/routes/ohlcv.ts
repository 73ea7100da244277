import type { EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import { INTERVAL_MS, invalidArgument, toIso } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import { crc32 } from 'node:zlib';
import type { Request, Response, Router } from 'express';
import { Router as createRouter } from 'express';
import Joi from 'joi';
import type { BackfillDesk, BackfillHandle } from '../backfills.js';
import { MAX_WAIT_MS } from '../backfills.js';
import type { BarService, OhlcvBars } from '../bars.js';
import { assemble } from '../ohlcv-body.js';
import type { SymbolRegistry } from '../symbols.js';
import { rules, unknownSymbol, validateQuery } from './params.js';

interface OhlcvQuery {
  symbol: MarketSymbol;
  interval: Interval;
  startDate?: EpochMs;
  endDate?: EpochMs;
  limit?: number;
  wait?: number;
}

/** Who a history miss is asked for: the chart page (its own origin) or an API client. */
export function requester(req: Request): 'chart' | 'api' {
  const referer = req.get('referer');
  if (!referer) return 'api';
  try {
    return new URL(referer).host === req.get('host') ? 'chart' : 'api';
  } catch {
    return 'api';
  }
}

/**
 * Starts (or joins) a backfill when [from, to) reaches history storage lacks; a failing check
 * never fails the history request it rides on.
 */
export async function backfillOnMiss(
  deps: { backfills?: BackfillDesk | undefined; logger?: Logger | undefined },
  symbol: MarketSymbol,
  from: EpochMs,
  to: EpochMs,
  requestedBy: string,
): Promise<BackfillHandle | undefined> {
  if (!deps.backfills) return undefined;
  try {
    return await deps.backfills.onHistoryRequest(symbol, { from, to }, requestedBy);
  } catch (err) {
    deps.logger?.warn('history miss check failed', { symbol, err: (err as Error).message });
    return undefined;
  }
}

/** How long a browser may keep a fully closed answer without asking again. */
export const CLOSED_MAX_AGE_S = 86_400;

/**
 * Writes the answer from its prepared pieces (ohlcv-body.ts), gzipped when the client takes it.
 * An answer made only of closed pages carries a strong ETag and `immutable`, so a browser keeps
 * it and a revalidation is a 304 without a body; the rest get a weak ETag from the same parts.
 */
function sendOhlcv(
  req: Request,
  res: Response,
  q: OhlcvQuery,
  answer: OhlcvBars,
  backfill: BackfillHandle | undefined,
): void {
  const gzip = req.acceptsEncodings('gzip', 'identity') === 'gzip';
  const head = `{"symbol":${JSON.stringify(q.symbol)},"interval":${JSON.stringify(q.interval)},"bars":[`;
  const tail = `],"partial":${String(answer.partial)}${backfill ? `,"backfill":${JSON.stringify(backfill)}` : ''}}`;
  res.type('application/json').vary('Accept-Encoding');
  if (gzip) res.set('Content-Encoding', 'gzip');
  const tag = `${answer.tag}.${crc32(tail).toString(16)}${gzip ? '-gz' : ''}`;
  if (answer.closed && !backfill) {
    res.set('ETag', `"${tag}"`);
    res.set('Cache-Control', `public, max-age=${CLOSED_MAX_AGE_S}, immutable`);
  } else {
    // Weak: the per-request part is told apart by a CRC-32, not a cryptographic hash.
    res.set('ETag', `W/"${tag}"`);
  }
  // A revalidation that matches costs no assembly at all.
  if (req.fresh) {
    res.status(304).end();
    return;
  }
  res.send(assemble(head, answer.pieces, tail, gzip));
}

/**
 * `GET /ohlcv`: startDate inclusive, endDate exclusive (default now), interval default 1m; with
 * `limit` and no startDate, the newest `limit` bars before endDate. A range storage lacks starts
 * a backfill (`backfill` in the answer); `wait` (ms) waits for it and answers with what it stored.
 */
export function ohlcvRouter(deps: {
  bars: BarService;
  symbols: SymbolRegistry;
  now: () => EpochMs;
  backfills?: BackfillDesk | undefined;
  logger?: Logger | undefined;
}): Router {
  const schema = Joi.object<OhlcvQuery>({
    symbol: rules.symbol().required(),
    interval: rules.interval().default('1m'),
    startDate: rules.instant(),
    endDate: rules.instant(),
    limit: rules.count(deps.bars.maxBars),
    wait: Joi.number().integer().min(0).max(MAX_WAIT_MS),
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
    const read = (fresh: boolean) =>
      deps.bars.ohlcv(q.symbol, q.interval, q.startDate ?? Number.NEGATIVE_INFINITY, end, q.limit, {
        fresh,
      });
    let answer = await read(false);
    // The time the answer covers: the range, or with `limit` the newest `limit` buckets of it.
    const width = INTERVAL_MS[q.interval];
    const wantedFrom = Math.max(
      q.startDate ?? Number.NEGATIVE_INFINITY,
      q.limit === undefined ? Number.NEGATIVE_INFINITY : end - q.limit * width,
    );
    let backfill = await backfillOnMiss(deps, q.symbol, wantedFrom, end, requester(req));
    if (backfill && q.wait && deps.backfills) {
      const closed = new AbortController();
      const onClose = (): void => closed.abort();
      res.on('close', onClose);
      try {
        const view = await deps.backfills.waitFor(backfill.id, q.wait, closed.signal);
        if (view) {
          backfill = {
            id: view.id,
            status: view.status,
            ...(view.unavailable.length > 0 ? { unavailable: view.unavailable } : {}),
          };
        }
      } finally {
        res.off('close', onClose);
      }
      if (closed.signal.aborted) return;
      answer = await read(true);
    }
    sendOhlcv(req, res, q, answer, backfill);
  });
  return router;
}
