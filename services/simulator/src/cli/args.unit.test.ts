import { describe, expect, it } from 'vitest';
import { parseReplayArgs, parseSpeed, UsageError } from './args.js';

const base = ['--symbols', 'btc-usd,ETH/USD', '--from', '2026-11-20T00:00Z', '--to', '2026-11-21'];

function usage(argv: string[]): string {
  try {
    parseReplayArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error('no usage error');
}

describe('pnpm replay arguments', () => {
  it('reads the defaults: speed 1, stored history, a random session topic, 1m steps', () => {
    const args = parseReplayArgs(base);
    expect(args).toMatchObject({
      symbols: ['BTC-USD', 'ETH-USD'],
      from: Date.UTC(2026, 10, 20),
      to: Date.UTC(2026, 10, 21),
      speed: 1,
      source: { kind: 'stored' },
      paused: false,
      controlPort: undefined,
    });
    expect(args.session).toMatch(/^cli-[0-9a-f]{8}$/);
    expect(args.topic).toBe(`replay.${args.session}`);
  });

  it('takes every option', () => {
    const args = parseReplayArgs([
      ...base,
      '--speed',
      'max',
      '--source',
      'file:/tmp/trades.csv.gz',
      '--session',
      'mine',
      '--topic',
      'my.topic',
      '--control-port',
      '0',
      '--step',
      '5m',
      '--paused',
    ]);
    expect(args).toMatchObject({
      speed: 'max',
      source: { kind: 'file', path: '/tmp/trades.csv.gz' },
      session: 'mine',
      topic: 'my.topic',
      controlPort: 0,
      paused: true,
    });
    expect(parseSpeed('60x')).toBe(60);
    expect(parseSpeed('0.1')).toBe(0.1);
  });

  it('says what is wrong in one line', () => {
    expect(usage(['--from', 'x'])).toBe('--symbols is required');
    expect(usage([...base.slice(0, 4), '--to', '2026-11-19'])).toBe('--to must be after --from');
    expect(usage([...base, '--speed', '0'])).toMatch(/^--speed must be a number from 0.1 to/);
    expect(usage([...base, '--source', 'http://x'])).toMatch(
      /^--source must be stored or file:PATH/,
    );
    expect(usage([...base, '--session', 'a b'])).toMatch(/^--session must be/);
    expect(usage([...base, '--topic', 'tick-data'])).toMatch(/mix the replay into the live series/);
    expect(usage([...base, '--control-port', '70000'])).toMatch(/^--control-port must be a port/);
    expect(usage([...base, '--step', '7m'])).toMatch(/^--step: /);
    expect(usage([...base, '--bogus'])).toMatch(/bogus/);
    expect(usage(['--symbols', '???', '--from', '1', '--to', '2'])).toMatch(/^--symbols: /);
  });
});
