import type { BarUpdate, Interval, MarketSymbol } from '@candlestream/core';
import { decodeBarUpdate } from '@candlestream/core';
import type { Redis } from 'ioredis';
import type { RedisGate } from './redis-gate.js';

/**
 * The newest bar per (symbol, interval) as the live pipeline last published it: the forming bar
 * (`final: false`) or, in a quiet moment, the one that just closed. The API merges it with stored
 * history. Writes never move a bar back in time, so a redelivered old update cannot regress it.
 */
export interface LiveBarStore {
  readonly kind: 'redis' | 'memory';
  put(updates: readonly BarUpdate[]): Promise<void>;
  get(symbol: MarketSymbol, interval: Interval): Promise<BarUpdate | undefined>;
  close(): Promise<void>;
}

/** Keeps, per (symbol, interval), the update with the newest bar; a final beats a forming twin. */
export function newestPerSeries(updates: readonly BarUpdate[]): BarUpdate[] {
  const newest = new Map<string, BarUpdate>();
  for (const update of updates) {
    const key = `${update.symbol} ${update.interval}`;
    const seen = newest.get(key);
    if (!seen || isNewerUpdate(update, seen)) newest.set(key, update);
  }
  return [...newest.values()];
}

/** Whether `candidate` should replace `current` for one series: a later bar, or a final twin. */
function isNewerUpdate(candidate: BarUpdate, current: BarUpdate): boolean {
  if (candidate.bar.time !== current.bar.time) return candidate.bar.time > current.bar.time;
  return candidate.final || !current.final;
}

export class MemoryLiveBarStore implements LiveBarStore {
  readonly kind = 'memory';
  readonly #bars = new Map<string, BarUpdate>();

  put(updates: readonly BarUpdate[]): Promise<void> {
    for (const update of newestPerSeries(updates)) {
      const key = `${update.symbol} ${update.interval}`;
      const current = this.#bars.get(key);
      if (!current || isNewerUpdate(update, current)) this.#bars.set(key, update);
    }
    return Promise.resolve();
  }

  get(symbol: MarketSymbol, interval: Interval): Promise<BarUpdate | undefined> {
    return Promise.resolve(this.#bars.get(`${symbol} ${interval}`));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Compare-and-set per field in one round trip: a field is replaced only by an update whose bar is
 * newer, or as new and final. ARGV holds (field, time, final, json) quadruples.
 */
const PUT_NEWER_LUA = `
local written = 0
for i = 1, #ARGV, 4 do
  local field, time, final, json = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3]
  local current = redis.call('HGET', KEYS[1], field)
  local replace = true
  if current then
    local seen = cjson.decode(current)
    if seen.bar.time > time or (seen.bar.time == time and seen.final and final ~= '1') then
      replace = false
    end
  end
  if replace then
    redis.call('HSET', KEYS[1], field, json)
    written = written + 1
  end
end
return written`;

/** One Redis hash per symbol (`<prefix>live:<symbol>`), one field per interval. */
export class RedisLiveBarStore implements LiveBarStore {
  readonly kind = 'redis';
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #gate: RedisGate | undefined;

  /** With a gate, commands fail at once while Redis is being skipped (callers fall back). */
  constructor(redis: Redis, prefix: string, gate?: RedisGate) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#gate = gate;
  }

  #command<T>(op: (redis: Redis) => Promise<T>): Promise<T> {
    return this.#gate ? this.#gate.run(op) : op(this.#redis);
  }

  key(symbol: MarketSymbol): string {
    return `${this.#prefix}live:${symbol}`;
  }

  async put(updates: readonly BarUpdate[]): Promise<void> {
    const bySymbol = new Map<MarketSymbol, string[]>();
    for (const u of newestPerSeries(updates)) {
      let args = bySymbol.get(u.symbol);
      if (!args) bySymbol.set(u.symbol, (args = []));
      args.push(u.interval, String(u.bar.time), u.final ? '1' : '0', JSON.stringify(u));
    }
    if (bySymbol.size === 0) return;
    const results = await this.#command((redis) => {
      const pipeline = redis.pipeline();
      for (const [symbol, args] of bySymbol)
        pipeline.eval(PUT_NEWER_LUA, 1, this.key(symbol), ...args);
      return pipeline.exec();
    });
    const failed = results?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  async get(symbol: MarketSymbol, interval: Interval): Promise<BarUpdate | undefined> {
    const raw = await this.#command((redis) => redis.hget(this.key(symbol), interval));
    if (raw === null) return undefined;
    const decoded = decodeBarUpdate(raw);
    return decoded.ok ? decoded.value : undefined;
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => undefined);
  }
}
