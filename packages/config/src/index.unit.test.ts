import { AppError } from '@candlestream/core';
import Joi from 'joi';
import { describe, expect, it } from 'vitest';
import { authProblems, configProblems, loadConfig, parseBrokerList, vars } from './index.js';

const spec = {
  kafkaBrokers: vars.kafkaBrokers(),
  databaseUrl: vars.databaseUrl(),
  redisUrl: vars.redisUrl(),
  symbols: vars.symbols(),
  port: vars.port(),
  authMode: vars.authMode(),
  jwtSecret: vars.jwtSecret(),
  jwtPublicKey: vars.jwtPublicKey(),
  logLevel: vars.logLevel(),
};
const base = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/candles' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(spec, env, { refine: authProblems });
  } catch (err) {
    expect(AppError.is(err, 'INVALID_CONFIG')).toBe(true);
    expect((err as AppError).retriable).toBe(false);
    return configProblems(err) ?? [];
  }
  throw new Error('expected the configuration to be refused');
}

describe('loadConfig', () => {
  it('applies the embedded defaults', () => {
    const config = loadConfig(spec, base);
    expect(config).toEqual({
      kafkaBrokers: ['127.0.0.1:9092'],
      databaseUrl: base.DATABASE_URL,
      redisUrl: undefined,
      symbols: ['BTC-USD', 'ETH-USD'],
      port: 3000,
      authMode: 'off',
      jwtSecret: undefined,
      jwtPublicKey: undefined,
      logLevel: 'info',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('converts and canonicalises what it reads', () => {
    const config = loadConfig(spec, {
      ...base,
      KAFKA_BROKERS: ' broker-1:9092, [::1]:19092 ',
      SYMBOLS: 'btcusd,SOL/USDT',
      PORT: '8080',
      REDIS_URL: 'redis://127.0.0.1:6379/2',
      LOG_LEVEL: 'debug',
    });
    expect(config.kafkaBrokers).toEqual(['broker-1:9092', '[::1]:19092']);
    expect(config.symbols).toEqual(['BTC-USD', 'SOL-USDT']);
    expect(config.port).toBe(8080);
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379/2');
    expect(config.logLevel).toBe('debug');
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig(spec, { ...base, PORT: '', REDIS_URL: '  ' })).toMatchObject({
      port: 3000,
      redisUrl: undefined,
    });
  });

  it('gives one line per bad variable, naming it and the value', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      KAFKA_BROKERS: 'localhost',
      SYMBOLS: 'BTC-USD,???',
      LOG_LEVEL: 'verbose',
      REDIS_URL: 'http://x',
    });
    expect(problems).toEqual([
      'KAFKA_BROKERS has "localhost", which is not host:port (got "localhost")',
      'DATABASE_URL is required',
      'REDIS_URL must be a redis:// or rediss:// URL',
      expect.stringMatching(
        /^SYMBOLS symbol "\?\?\?" is not BASE-QUOTE.*\(got "BTC-USD,\?\?\?"\)$/,
      ),
      'PORT must be a port number (got "eighty")',
      'LOG_LEVEL must be one of [error, warn, info, debug] (got "verbose")',
    ]);
  });

  it('never echoes a secret', () => {
    const problems = problemsOf({
      ...base,
      JWT_SECRET: 'short-secret',
      DATABASE_URL: 'mysql://u:pw@h/db',
    });
    expect(problems.join('\n')).not.toMatch(/short-secret|pw@/);
    expect(problems).toEqual([
      'DATABASE_URL must be a postgres:// or postgresql:// URL',
      'JWT_SECRET must be at least 32 characters for HS256',
    ]);
  });

  it('checks rules across variables', () => {
    expect(problemsOf({ ...base, AUTH_MODE: 'jwt' })).toEqual([
      'AUTH_MODE=jwt needs JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256)',
    ]);
    const ok = loadConfig(
      spec,
      { ...base, AUTH_MODE: 'jwt', JWT_SECRET: 'x'.repeat(32) },
      { refine: authProblems },
    );
    expect(ok.authMode).toBe('jwt');
  });

  it('takes service-specific variables', () => {
    const config = loadConfig(
      {
        batch: vars.custom<number>('BATCH_SIZE', Joi.number().integer().min(1), { fallback: 500 }),
      },
      { BATCH_SIZE: '250' },
    );
    expect(config.batch).toBe(250);
    expect(
      loadConfig({ batch: vars.custom<number>('BATCH_SIZE', Joi.number(), { fallback: 500 }) }, {})
        .batch,
    ).toBe(500);
    expect(() =>
      loadConfig(
        { batch: vars.custom<number>('BATCH_SIZE', Joi.number().min(1)) },
        { BATCH_SIZE: '0' },
      ),
    ).toThrow(/BATCH_SIZE must be greater than or equal to 1/);
  });
});

describe('HOST', () => {
  const spec = { host: vars.host() };
  it('regression: services listen on loopback unless HOST opens them', () => {
    expect(loadConfig(spec, {}).host).toBe('127.0.0.1');
    expect(loadConfig(spec, { HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig(spec, { HOST: '::' }).host).toBe('::');
    expect(loadConfig(spec, { HOST: 'app.internal' }).host).toBe('app.internal');
  });

  it('names HOST when it is neither an address nor a host name', () => {
    let problems: string[] | undefined;
    try {
      loadConfig(spec, { HOST: 'not a host' });
    } catch (err) {
      problems = configProblems(err);
    }
    expect(problems).toEqual([
      'HOST must be an IP address or a host name, such as 0.0.0.0 (got "not a host")',
    ]);
  });
});

describe('parseBrokerList', () => {
  it('refuses ports out of range and empty lists', () => {
    expect(() => parseBrokerList('a:0')).toThrow(/not host:port/);
    expect(() => parseBrokerList('a:65536')).toThrow(/not host:port/);
    expect(() => parseBrokerList(' , ')).toThrow(/empty/);
    expect(parseBrokerList('a:1,b:65535')).toEqual(['a:1', 'b:65535']);
  });
});

describe('configProblems', () => {
  it('is undefined for other errors', () => {
    expect(configProblems(new Error('x'))).toBeUndefined();
    expect(configProblems(new AppError('INTERNAL', 'x'))).toBeUndefined();
  });
});
