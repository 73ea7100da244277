import { PassThrough } from 'node:stream';
import { AppError } from '@candlestream/core';
import { describe, expect, it } from 'vitest';
import type { LoggerOptions } from './index.js';
import { createLogger, formatLine } from './index.js';

async function capture(
  options: Omit<LoggerOptions, 'stream'>,
  write: (log: ReturnType<typeof createLogger>) => void,
) {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString()));
  const log = createLogger({ ...options, stream });
  write(log);
  await new Promise((r) => setImmediate(r));
  return chunks
    .join('')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => ({ raw: l, json: JSON.parse(l) as Record<string, unknown> }));
}

describe('logger', () => {
  it('writes one JSON line per event with the standard keys first', async () => {
    const lines = await capture({ service: 'producer' }, (log) => {
      log.child({ component: 'source' }).info('batch published', { count: 500, durationMs: 12 });
    });
    expect(lines).toHaveLength(1);
    const { raw, json } = lines[0]!;
    expect(Object.keys(json)).toEqual([
      'timestamp',
      'level',
      'service',
      'component',
      'msg',
      'count',
      'durationMs',
    ]);
    expect(json).toMatchObject({
      level: 'info',
      service: 'producer',
      component: 'source',
      msg: 'batch published',
      count: 500,
    });
    expect(Date.parse(json['timestamp'] as string)).not.toBeNaN();
    expect(raw).not.toContain('"message"');
  });

  it('filters by level', async () => {
    const lines = await capture({ service: 's', level: 'warn' }, (log) => {
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
    });
    expect(lines.map((l) => l.json['msg'])).toEqual(['w', 'e']);
  });

  it('is silent when asked', async () => {
    const lines = await capture({ service: 's', silent: true }, (log) =>
      log.error('nobody hears this'),
    );
    expect(lines).toEqual([]);
  });

  it('serialises errors with their code, retriable flag and cause', async () => {
    const err = new AppError('UNAVAILABLE', 'broker down', { cause: new Error('ECONNREFUSED') });
    const lines = await capture({ service: 's' }, (log) => log.error('publish failed', { err }));
    expect(lines[0]!.json['err']).toMatchObject({
      name: 'AppError',
      message: 'broker down',
      code: 'UNAVAILABLE',
      retriable: true,
      cause: { message: 'ECONNREFUSED' },
    });
  });

  it('survives a field that cannot be serialised', () => {
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    const line = JSON.parse(
      formatLine({ level: 'info', msg: 'x', service: 's', circular }),
    ) as Record<string, unknown>;
    expect(line).toMatchObject({ msg: 'x', logError: 'fields could not be serialised' });
  });
});
