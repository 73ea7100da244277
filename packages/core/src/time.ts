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

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * Parses an ISO-8601 instant (`2024-01-01`, `2024-01-01T12:00`, `…Z`, `…+02:00`) or epoch
 * milliseconds. A time without an offset is UTC, as market data always is (Date.parse would read
 * it as local time). Returns undefined for anything else, including impossible dates (Feb 30).
 */
export function parseInstant(input: string): EpochMs | undefined {
  const text = input.trim();
  if (/^-?\d{1,16}$/.test(text)) return Number(text);
  const m = ISO_RE.exec(text);
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second, zone] = m;
  const daysInMonth = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
  if (Number(month) < 1 || Number(month) > 12 || Number(day) < 1 || Number(day) > daysInMonth) {
    return undefined;
  }
  if (
    hour !== undefined &&
    (Number(hour) > 23 || Number(minute) > 59 || Number(second ?? 0) > 59)
  ) {
    return undefined;
  }
  const ms = Date.parse(hour === undefined ? text : zone ? text : `${text}Z`);
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
