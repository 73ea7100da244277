import type { EpochMs, MarketSymbol } from '@candlestream/core';
import {
  AppError,
  BACKFILL_ID_PATTERN,
  invalidArgument,
  MAX_BACKFILL_SPAN_MS,
  MINUTE_MS,
  toIso,
} from '@candlestream/core';
import type { Router } from 'express';
import { Router as createRouter } from 'express';
import Joi from 'joi';
import type { BackfillDesk } from '../backfills.js';
import type { SymbolRegistry } from '../symbols.js';
import { rules, unknownSymbol, validateQuery } from './params.js';

/** GET /backfills answers this many jobs unless `limit` says otherwise, and never more than the max. */
export const DEFAULT_BACKFILL_LIST = 50;
export const MAX_BACKFILL_LIST = 500;
const SPAN_DAYS = MAX_BACKFILL_SPAN_MS / (1_440 * MINUTE_MS);

interface BackfillBody {
  symbol: MarketSymbol;
  from: EpochMs;
  to: EpochMs;
}

/** JSON numbers are accepted for epoch ms, checked by the same 13-digit rule as /ohlcv's text. */
function asText(value: unknown): unknown {
  return typeof value === 'number' ? String(value) : value;
}

/**
 * `POST /backfills` asks for history (202 with the queued job), `GET /backfills/:id` follows a
 * job, `GET /backfills` lists the newest. The coordinator owns the jobs (docs/BACKFILLS.md).
 */
export function backfillsRouter(deps: {
  backfills: BackfillDesk;
  symbols: SymbolRegistry;
}): Router {
  const bodySchema = Joi.object<BackfillBody>({
    symbol: rules.symbol().required(),
    from: rules.instant().required(),
    to: rules.instant().required(),
  });
  const listSchema = Joi.object<{ symbol?: MarketSymbol; limit: number }>({
    symbol: rules.symbol(),
    limit: rules.count(MAX_BACKFILL_LIST).default(DEFAULT_BACKFILL_LIST),
  });
  const router = createRouter();

  router.post('/backfills', async (req, res) => {
    const raw: unknown = req.body;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw invalidArgument('the body must be a JSON object {"symbol","from","to"}');
    }
    const input = raw as Record<string, unknown>;
    const body = validateQuery(bodySchema, {
      ...input,
      from: asText(input['from']),
      to: asText(input['to']),
    });
    if (body.to <= body.from) {
      throw invalidArgument(`to ${toIso(body.to)} must be after from ${toIso(body.from)}`);
    }
    if (body.to - body.from > MAX_BACKFILL_SPAN_MS) {
      throw invalidArgument(
        `to - from spans more than ${SPAN_DAYS} days, the most one backfill may ask for; split the range`,
      );
    }
    if (!(await deps.symbols.has(body.symbol))) throw unknownSymbol(body.symbol);
    const job = await deps.backfills.submit(body.symbol, { from: body.from, to: body.to }, 'api');
    res.status(202).location(`/backfills/${job.id}`).json(job);
  });

  router.get('/backfills', async (req, res) => {
    const q = validateQuery(listSchema, req.query);
    res.json({ backfills: await deps.backfills.recent(q.limit, q.symbol) });
  });

  router.get('/backfills/:id', async (req, res) => {
    const id = req.params['id'] ?? '';
    const job = BACKFILL_ID_PATTERN.test(id) ? await deps.backfills.view(id) : undefined;
    if (!job) throw new AppError('NOT_FOUND', `no backfill ${id.slice(0, 64)}`);
    res.json(job);
  });

  return router;
}
