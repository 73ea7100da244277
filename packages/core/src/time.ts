/** Milliseconds since the Unix epoch, UTC. Every timestamp in the platform is one. */
export type EpochMs = number;

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;
export const WEEK_MS = 7 * DAY_MS;

/** The epoch (1970-01-01) was a Thursday; the first Monday 00:00 UTC after it is 4 days later. */
export const FIRST_MONDAY_MS = 4 * DAY_MS;

/** Floor modulo: the remainder has the sign of the divisor, so instants before 1970 floor down. */
export function floorMod(value: number, divisor: number): number {
  return ((value % divisor) + divisor) % divisor;
}

export function toIso(ms: EpochMs): string {
  return new Date(ms).toISOString();
}

/**
 * Parses an ISO-8601 instant or epoch milliseconds. A date without a zone is read as UTC, as
 * market data always is; returns undefined when the text is not a date.
 */
export function parseInstant(input: string): EpochMs | undefined {
  const text = input.trim();
  if (/^-?\d{1,16}$/.test(text)) return Number(text);
  // Date.parse reads date-time forms without an offset as local time: pin them to UTC.
  const isoLocal = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$/.test(text);
  const isoDate = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const isoZoned = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i.test(text);
  if (!isoLocal && !isoDate && !isoZoned) return undefined;
  const ms = Date.parse(isoLocal ? `${text}Z` : text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** A source of the current time. Logic never reads the wall clock itself (STYLE: pass a clock). */
export interface Clock {
  now(): EpochMs;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to: for tests and for replay at any speed. */
export class SimulatedClock implements Clock {
  #now: EpochMs;

  constructor(start: EpochMs = 0) {
    this.#now = start;
  }

  now(): EpochMs {
    return this.#now;
  }

  set(ms: EpochMs): void {
    this.#now = ms;
  }

  advance(ms: number): EpochMs {
    this.#now += ms;
    return this.#now;
  }
}
