import type { MarketSymbol } from '@candlestream/core';
import { AppError, parseSymbolList } from '@candlestream/core';
import Joi from 'joi';

/**
 * One environment variable: its name, its joi schema (which may default and convert), and the
 * TypeScript type it yields. Services list the variables they read; `loadConfig` does the rest.
 */
export interface EnvVar<T> {
  readonly name: string;
  readonly schema: Joi.Schema;
  /** Never echo the value in an error (keys, secrets). */
  readonly secret?: boolean;
  /** Text used when the variable is unset; validated and converted like a real value. */
  readonly fallback?: string;
  /** Phantom: carries T for inference; never set. */
  readonly __type?: T;
}

export type ConfigOf<S extends Record<string, EnvVar<unknown>>> = {
  readonly [K in keyof S]: S[K] extends EnvVar<infer T> ? T : never;
};

export type Env = Readonly<Record<string, string | undefined>>;

export interface LoadOptions<C> {
  /** Rules across variables; returns one line per problem. */
  refine?: (config: C) => string[];
}

interface VarOptions {
  secret?: boolean;
  fallback?: string | number;
}

function envVar<T>(name: string, schema: Joi.Schema, options: VarOptions = {}): EnvVar<T> {
  return {
    name,
    schema: schema.label(name),
    secret: options.secret ?? false,
    ...(options.fallback === undefined ? {} : { fallback: String(options.fallback) }),
  };
}

const HOST_PORT_RE = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** `host:port[,host:port…]` into a list; IPv6 hosts in brackets. */
export function parseBrokerList(value: string): string[] {
  const brokers = value
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  if (brokers.length === 0) throw new Error('is empty');
  for (const broker of brokers) {
    const match = HOST_PORT_RE.exec(broker);
    const port = match ? Number(match[2]) : 0;
    if (!match || port < 1 || port > 65_535) {
      throw new Error(`has ${JSON.stringify(broker)}, which is not host:port`);
    }
  }
  return brokers;
}

function custom<T>(parse: (value: string) => T) {
  return (value: string, helpers: Joi.CustomHelpers): T | Joi.ErrorReport => {
    try {
      return parse(value);
    } catch (err) {
      return helpers.message({ custom: `{{#label}} ${(err as Error).message}` });
    }
  };
}

function url(schemes: string[]): Joi.StringSchema {
  return Joi.string()
    .uri({ scheme: schemes })
    .messages({
      'string.uriCustomScheme': `{{#label}} must be a ${schemes.map((s) => `${s}://`).join(' or ')} URL`,
      'string.uri': `{{#label}} must be a URL`,
    });
}

function portSchema(): Joi.NumberSchema {
  return Joi.number().integer().port().messages({
    'number.base': '{{#label}} must be a port number',
    'number.port': '{{#label}} must be a port number (0-65535)',
    'number.integer': '{{#label}} must be a port number',
  });
}

/** The contract's environment variables, each with its rule. Defaults are the embedded ones. */
export const vars = {
  kafkaBrokers: (fallback = '127.0.0.1:9092') =>
    envVar<string[]>('KAFKA_BROKERS', Joi.string().custom(custom(parseBrokerList)), { fallback }),
  databaseUrl: () =>
    envVar<string>('DATABASE_URL', url(['postgres', 'postgresql']).required(), { secret: true }),
  redisUrl: () =>
    envVar<string | undefined>('REDIS_URL', url(['redis', 'rediss']), { secret: true }),
  symbols: (fallback = 'BTC-USD,ETH-USD') =>
    envVar<MarketSymbol[]>('SYMBOLS', Joi.string().custom(custom(parseSymbolList)), { fallback }),
  cryptocompareApiKey: () =>
    envVar<string | undefined>('CRYPTOCOMPARE_API_KEY', Joi.string().min(8), { secret: true }),
  port: (fallback = 3000) => envVar<number>('PORT', portSchema(), { fallback }),
  /**
   * The interface a service listens on: loopback unless opened on purpose (the contract's HOST;
   * compose sets 0.0.0.0 so other containers and the published ports reach it).
   */
  host: () =>
    envVar<string>(
      'HOST',
      Joi.alternatives(Joi.string().ip({ cidr: 'forbidden' }), Joi.string().hostname()).messages({
        'alternatives.match': '{{#label}} must be an IP address or a host name, such as 0.0.0.0',
      }),
      { fallback: '127.0.0.1' },
    ),
  /** The /health and /metrics port of a service without an API of its own; 0 picks a free one. */
  healthPort: (fallback: number) => envVar<number>('HEALTH_PORT', portSchema(), { fallback }),
  authMode: () =>
    envVar<'off' | 'jwt'>('AUTH_MODE', Joi.string().valid('off', 'jwt'), { fallback: 'off' }),
  jwtSecret: () =>
    envVar<string | undefined>(
      'JWT_SECRET',
      Joi.string().min(32).messages({
        'string.min': '{{#label}} must be at least 32 characters for HS256',
      }),
      { secret: true },
    ),
  jwtPublicKey: () =>
    envVar<string | undefined>(
      'JWT_PUBLIC_KEY',
      Joi.string()
        .pattern(/-----BEGIN (RSA )?PUBLIC KEY-----/)
        .messages({ 'string.pattern.base': '{{#label}} must be a PEM public key' }),
      { secret: true },
    ),
  logLevel: () =>
    envVar<'error' | 'warn' | 'info' | 'debug'>(
      'LOG_LEVEL',
      Joi.string().valid('error', 'warn', 'info', 'debug'),
      { fallback: 'info' },
    ),
  /** Prefix of every Redis key the platform writes (several deployments can share a Redis). */
  cachePrefix: () =>
    envVar<string>('CACHE_PREFIX', Joi.string().max(100), { fallback: 'candlestream:' }),
  /**
   * How long a chart replay session nobody touches lives before it and its topic are removed: the
   * simulator removes it, the datastore touches the ones it streams (the same setting for both).
   */
  replayIdleTimeoutMs: () =>
    envVar<number>(
      'REPLAY_IDLE_TIMEOUT_MS',
      Joi.number()
        .integer()
        .min(1_000)
        .max(7 * 24 * 3_600_000)
        .messages({
          'number.base': '{{#label}} must be a whole number of milliseconds',
          'number.min': '{{#label}} must be between 1000 ms and 7 days',
          'number.max': '{{#label}} must be between 1000 ms and 7 days',
        }),
      { fallback: 600_000 },
    ),
  /** Any other variable a service needs, with its own schema. */
  custom: <T>(name: string, schema: Joi.Schema, options: VarOptions = {}) =>
    envVar<T>(name, schema, options),
};

/**
 * Validates the variables in `spec` against `env` and returns them typed and frozen. Empty
 * strings count as unset (compose files often pass `FOO=`). On failure throws an
 * INVALID_CONFIG AppError whose `details.problems` holds one line per bad variable.
 */
export function loadConfig<S extends Record<string, EnvVar<unknown>>>(
  spec: S,
  env: Env,
  options: LoadOptions<ConfigOf<S>> = {},
): ConfigOf<S> {
  const keys: (keyof S & string)[] = Object.keys(spec);
  const shape: Record<string, Joi.Schema> = {};
  const input: Record<string, string> = {};
  const secrets = new Set<string>();
  for (const key of keys) {
    const v = spec[key]!;
    shape[v.name] = v.schema;
    if (v.secret) secrets.add(v.name);
    const raw = env[v.name]?.trim();
    if (raw !== undefined && raw !== '') input[v.name] = raw;
    else if (v.fallback !== undefined) input[v.name] = v.fallback;
  }
  const result = Joi.object<Record<string, unknown>>(shape).validate(input, {
    abortEarly: false,
    convert: true,
    errors: { wrap: { label: false } },
  });
  if (result.error) {
    const problems: string[] = [];
    const reported = new Set<string>();
    for (const detail of result.error.details) {
      const name = String(detail.path[0] ?? detail.context?.label ?? '');
      if (reported.has(name)) continue; // one line per variable
      reported.add(name);
      const got =
        !secrets.has(name) && input[name] !== undefined
          ? ` (got ${JSON.stringify(input[name])})`
          : '';
      problems.push(`${detail.message}${got}`);
    }
    throw configError(problems);
  }
  const config = {} as Record<string, unknown>;
  for (const key of keys) config[key] = result.value[spec[key]!.name];
  const typed = Object.freeze(config) as ConfigOf<S>;
  const crossProblems = options.refine?.(typed) ?? [];
  if (crossProblems.length > 0) throw configError(crossProblems);
  return typed;
}

function configError(problems: string[]): AppError {
  return new AppError('INVALID_CONFIG', `invalid configuration: ${problems.join('; ')}`, {
    retriable: false,
    details: { problems },
  });
}

/** The lines to print for a configuration error: one per bad variable. */
export function configProblems(err: unknown): string[] | undefined {
  if (!AppError.is(err, 'INVALID_CONFIG')) return undefined;
  const problems = err.details?.['problems'];
  return Array.isArray(problems) ? problems.map(String) : [err.message];
}

/** Cross-variable rule shared by every service that authenticates. */
export function authProblems(config: {
  authMode: 'off' | 'jwt';
  jwtSecret?: string | undefined;
  jwtPublicKey?: string | undefined;
}): string[] {
  if (config.authMode === 'jwt' && !config.jwtSecret && !config.jwtPublicKey) {
    return ['AUTH_MODE=jwt needs JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256)'];
  }
  return [];
}
