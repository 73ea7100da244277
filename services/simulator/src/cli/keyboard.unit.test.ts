import { describe, expect, it } from 'vitest';
import { keyCommand } from './keyboard.js';

const context = (playing: boolean, speed: number | 'max') => ({
  playing: () => playing,
  speed: () => speed,
  step: '1m' as const,
});

describe('replay keys', () => {
  it('map to the controls', () => {
    expect(keyCommand(' ', context(true, 1))).toEqual({ type: 'PAUSE' });
    expect(keyCommand(' ', context(false, 1))).toEqual({ type: 'RESUME' });
    expect(keyCommand('+', context(true, 60))).toEqual({ type: 'SPEED', speed: 120 });
    expect(keyCommand('-', context(true, 60))).toEqual({ type: 'SPEED', speed: 30 });
    expect(keyCommand('-', context(true, 0.1))).toEqual({ type: 'SPEED', speed: 0.1 });
    expect(keyCommand('-', context(true, 'max'))).toEqual({ type: 'SPEED', speed: 1_000 });
    expect(keyCommand('+', context(true, 'max'))).toBeUndefined();
    expect(keyCommand('\u001b[C', context(true, 1))).toEqual({ type: 'STEP', interval: '1m' });
    expect(keyCommand('q', context(true, 1))).toEqual({ type: 'QUIT' });
    expect(keyCommand('\u0003', context(true, 1))).toEqual({ type: 'QUIT' });
    expect(keyCommand('x', context(true, 1))).toBeUndefined();
  });
});
