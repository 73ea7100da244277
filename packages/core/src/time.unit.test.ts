import { describe, expect, it } from 'vitest';
import { parseInstant, SimulatedClock } from './time.js';

describe('parseInstant', () => {
  it.each([
    ['2024-01-01', Date.UTC(2024, 0, 1)],
    ['2024-01-01T12:30', Date.UTC(2024, 0, 1, 12, 30)],
    ['2024-01-01T12:30:15', Date.UTC(2024, 0, 1, 12, 30, 15)],
    ['2024-01-01T12:30:15.250Z', Date.UTC(2024, 0, 1, 12, 30, 15, 250)],
    ['2024-01-01T00:00:00+02:00', Date.UTC(2023, 11, 31, 22)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['1700000000123', 1_700_000_000_123],
  ])('reads %s as UTC', (text, expected) => {
    expect(parseInstant(text)).toBe(expected);
  });

  it.each([
    'yesterday',
    '',
    '2024-13-01',
    '2023-02-29',
    '2024-02-30',
    '2024-01-01T24:00',
    '2024/01/01',
    '1e12',
  ])('refuses %j', (text) => {
    expect(parseInstant(text)).toBeUndefined();
  });
});

describe('SimulatedClock', () => {
  it('moves only when told to', () => {
    const clock = new SimulatedClock(1_000);
    expect(clock.now()).toBe(1_000);
    expect(clock.advance(500)).toBe(1_500);
    clock.set(42);
    expect(clock.now()).toBe(42);
  });
});
