import type { EpochMs, Interval, MarketSymbol, ReplaySpeed } from '@candlestream/core';
import {
  AppError,
  INTERVAL_MS,
  invalidArgument,
  MAX_REPLAY_SPEED,
  MAX_REPLAY_SYMBOLS,
  MIN_REPLAY_SPEED,
  MIN_TICK_TS_MS,
  parseSymbolList,
  toIso,
} from '@candlestream/core';
import type { Router } from 'express';
import { Router as createRouter } from 'express';
import Joi from 'joi';
import type { ReplayControl, ReplayDesk } from '../replays.js';
import type { SymbolRegistry } from '../symbols.js';
import { rules, unknownSymbol, validateQuery } from './params.js';

/** The longest range one session replays: a year, read a page at a time. */
export const MAX_REPLAY_SPAN_MS = 366 * INTERVAL_MS['1d'];

interface CreateBody {
  symbols: string;
  from: EpochMs;
  to?: EpochMs;
  speed: ReplaySpeed;
}

type ControlBody =
  | { action: 'play' | 'pause' | 'end' }
  | { action: 'step'; interval: Interval }
  | { action: 'seek'; to: EpochMs }
  | { action: 'speed'; speed: ReplaySpeed };

/** JSON numbers are accepted for epoch ms, checked by the same rule as /ohlcv's text. */
function asText(value: unknown): unknown {
  return typeof value === 'number' ? String(value) : value;
}

function objectBody(raw: unknown, shape: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalidArgument(`the body must be a JSON object ${shape}`);
  return raw as Record<string, unknown>;
}

const speedRule = () =>
  Joi.alternatives()
    .try(Joi.number().min(MIN_REPLAY_SPEED).max(MAX_REPLAY_SPEED), Joi.string().valid('max'))
    .messages({
      'alternatives.match': `{{#label}} must be a number from ${String(MIN_REPLAY_SPEED)} to ${String(MAX_REPLAY_SPEED)}, or "max"`,
    });

/**
 * `POST /replays` creates a chart replay session (201, paused at `from`), `GET /replays/:id`
 * reads it, `POST /replays/:id` controls it: play, pause, step (one bar of an interval), seek,
 * speed, end. The simulator hosts the sessions (docs/REPLAY.md).
 */
export function replaysRouter(deps: {
  replays: ReplayDesk;
  symbols: SymbolRegistry;
  now: () => EpochMs;
}): Router {
  const createSchema = Joi.object<CreateBody>({
    symbols: Joi.string().required(),
    from: rules.instant().required(),
    to: rules.instant(),
    speed: speedRule().default(1),
  });
  const controlSchema = Joi.object<ControlBody>({
    action: Joi.string().valid('play', 'pause', 'step', 'seek', 'speed', 'end').required(),
    interval: rules.interval().when('action', {
      is: 'step',
      then: Joi.optional().default('1m'),
      otherwise: Joi.forbidden(),
    }),
    to: rules.instant().when('action', {
      is: 'seek',
      then: Joi.required(),
      otherwise: Joi.forbidden(),
    }),
    speed: speedRule().when('action', {
      is: 'speed',
      then: Joi.required(),
      otherwise: Joi.forbidden(),
    }),
  });
  const router = createRouter();

  router.post('/replays', async (req, res) => {
    const input = objectBody(req.body, '{"symbols","from","to","speed"}');
    const symbolsInput = input['symbols'];
    const body = validateQuery(createSchema, {
      ...input,
      symbols: Array.isArray(symbolsInput) ? symbolsInput.join(',') : symbolsInput,
      from: asText(input['from']),
      to: asText(input['to']),
    });
    let symbols: MarketSymbol[];
    try {
      symbols = [...new Set(parseSymbolList(body.symbols))];
    } catch (err) {
      throw invalidArgument(`symbols: ${(err as Error).message}`);
    }
    if (symbols.length > MAX_REPLAY_SYMBOLS)
      throw invalidArgument(`at most ${String(MAX_REPLAY_SYMBOLS)} symbols per replay`);
    const to = body.to ?? deps.now();
    if (body.from < MIN_TICK_TS_MS || to <= body.from)
      throw invalidArgument(`to ${toIso(to)} must be after from ${toIso(body.from)}`);
    if (to - body.from > MAX_REPLAY_SPAN_MS)
      throw invalidArgument(
        'a replay spans at most 366 days; choose a later from or an earlier to',
      );
    for (const symbol of symbols)
      if (!(await deps.symbols.has(symbol))) throw unknownSymbol(symbol);
    const view = await deps.replays.create({ symbols, from: body.from, to, speed: body.speed });
    res.status(201).location(`/replays/${view.id}`).json(view);
  });

  router.get('/replays/:id', (req, res) => {
    const id = req.params['id'] ?? '';
    const view = deps.replays.view(id);
    if (!view) throw new AppError('NOT_FOUND', `no replay ${id.slice(0, 64)}`);
    res.json(view);
  });

  router.post('/replays/:id', async (req, res) => {
    const id = req.params['id'] ?? '';
    const input = objectBody(req.body, '{"action": "play|pause|step|seek|speed|end", …}');
    const body = validateQuery(controlSchema, { ...input, to: asText(input['to']) });
    const control: ReplayControl =
      body.action === 'step'
        ? { type: 'step', interval: body.interval }
        : body.action === 'seek'
          ? { type: 'seek', to: body.to }
          : body.action === 'speed'
            ? { type: 'speed', speed: body.speed }
            : { type: body.action };
    res.status(202).json(await deps.replays.control(id, control));
  });

  return router;
}
