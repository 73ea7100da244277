import type { ConfigOf, Env } from '@candlestream/config';
import { loadConfig, vars } from '@candlestream/config';
import { parseInstant } from '@candlestream/core';
import Joi from 'joi';

export const SOURCE_KINDS = [
  'auto',
  'synthetic',
  'cryptocompare',
  'cryptocompare-history',
  'file',
] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

const instant = Joi.string().custom((value: string, helpers) => {
  const ms = parseInstant(value);
  return ms === undefined
    ? helpers.message({
        custom: '{{#label}} must be an ISO-8601 time such as 2024-01-01T00:00:00Z',
      })
    : ms;
});

const spec = {
  kafkaBrokers: vars.kafkaBrokers(),
  symbols: vars.symbols(),
  apiKey: vars.cryptocompareApiKey(),
  logLevel: vars.logLevel(),
  healthPort: vars.healthPort(3001),
  host: vars.host(),
  /** `auto`: CryptoCompare when CRYPTOCOMPARE_API_KEY is set, else synthetic (the contract). */
  source: vars.custom<SourceKind>('PRODUCER_SOURCE', Joi.string().valid(...SOURCE_KINDS), {
    fallback: 'auto',
  }),
  syntheticRate: vars.custom<number>(
    'SYNTHETIC_RATE',
    Joi.number().positive().max(1_000_000).messages({
      'number.base': '{{#label}} must be trades per second (a positive number)',
      'number.positive': '{{#label}} must be trades per second (a positive number)',
    }),
    { fallback: 5 },
  ),
  syntheticSeed: vars.custom<number | undefined>('SYNTHETIC_SEED', Joi.number().integer()),
  /** History mode: trade times start here and run as fast as the broker takes them. */
  syntheticStart: vars.custom<number | undefined>('SYNTHETIC_START', instant),
  syntheticLimit: vars.custom<number | undefined>('SYNTHETIC_LIMIT', Joi.number().integer().min(1)),
  /** Publishing ceiling in trades per wall-clock second (replays, load tests); unset = none. */
  maxRate: vars.custom<number | undefined>(
    'PRODUCER_MAX_RATE',
    Joi.number().positive().messages({ 'number.positive': '{{#label}} must be trades per second' }),
  ),
  /** The backfilling region's consumer group on backfill-commands (docs/BACKFILLS.md). */
  backfillGroupId: vars.custom<string>(
    'PRODUCER_BACKFILL_GROUP',
    Joi.string()
      .pattern(/^[A-Za-z0-9._-]{1,100}$/)
      .messages({
        'string.pattern.base': '{{#label}} must be 1-100 of A-Z a-z 0-9 . _ -',
      }),
    { fallback: 'producer-backfill' },
  ),
  tradesFile: vars.custom<string | undefined>('TRADES_FILE', Joi.string()),
  historyFrom: vars.custom<number | undefined>('HISTORY_FROM', instant),
  historyTo: vars.custom<number | undefined>('HISTORY_TO', instant),
  exchange: vars.custom<string | undefined>(
    'CRYPTOCOMPARE_EXCHANGE',
    Joi.string().pattern(/^[A-Za-z0-9.-]{1,40}$/),
  ),
  wsUrl: vars.custom<string | undefined>(
    'CRYPTOCOMPARE_WS_URL',
    Joi.string().uri({ scheme: ['ws', 'wss'] }),
  ),
  restUrl: vars.custom<string | undefined>(
    'CRYPTOCOMPARE_REST_URL',
    Joi.string().uri({ scheme: ['http', 'https'] }),
  ),
};

export type ProducerConfig = ConfigOf<typeof spec>;

/** The source `auto` stands for, given the rest of the config. */
export function resolvedSource(config: ProducerConfig): Exclude<SourceKind, 'auto'> {
  if (config.source !== 'auto') return config.source;
  return config.apiKey ? 'cryptocompare' : 'synthetic';
}

function crossProblems(config: ProducerConfig): string[] {
  const problems: string[] = [];
  const source = resolvedSource(config);
  if ((source === 'cryptocompare' || source === 'cryptocompare-history') && !config.apiKey) {
    problems.push(`CRYPTOCOMPARE_API_KEY is required for PRODUCER_SOURCE=${source}`);
  }
  if (source === 'file' && !config.tradesFile) {
    problems.push('TRADES_FILE is required for PRODUCER_SOURCE=file');
  }
  if (source === 'cryptocompare-history') {
    if (config.historyFrom === undefined)
      problems.push('HISTORY_FROM is required for PRODUCER_SOURCE=cryptocompare-history');
    if (
      config.historyFrom !== undefined &&
      config.historyTo !== undefined &&
      config.historyTo <= config.historyFrom
    ) {
      problems.push('HISTORY_TO must be after HISTORY_FROM');
    }
  }
  return problems;
}

export function loadProducerConfig(env: Env = process.env): ProducerConfig {
  return loadConfig(spec, env, { refine: crossProblems });
}
