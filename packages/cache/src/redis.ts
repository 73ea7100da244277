import type { Logger } from '@candlestream/logger';
import { Redis } from 'ioredis';
import type { LiveBarStore } from './live-bars.js';
import { MemoryLiveBarStore, RedisLiveBarStore } from './live-bars.js';

export const COMMAND_TIMEOUT_MS = 1_000;

/** Default key prefix; tests give each run its own. */
export const DEFAULT_CACHE_PREFIX = 'candlestream:';

/**
 * A Redis client whose commands fail within COMMAND_TIMEOUT_MS while Redis is away (the cache is
 * never worth waiting for: callers degrade) and that keeps reconnecting in the background.
 */
export function createRedis(url: string, logger: Logger): Redis {
  const log = logger.child({ component: 'redis' });
  const redis = new Redis(url, {
    lazyConnect: false,
    maxRetriesPerRequest: 1,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
  });
  let healthy = true;
  redis.on('error', (err: Error) => {
    if (healthy) log.warn('redis unavailable; retrying in the background', { err: err.message });
    healthy = false;
  });
  redis.on('ready', () => {
    if (!healthy) log.info('redis reconnected');
    healthy = true;
  });
  return redis;
}

/** Redis when a URL is configured, else an in-process map (the contract's REDIS_URL default). */
export function createLiveBarStore(options: {
  redisUrl: string | undefined;
  prefix?: string;
  logger: Logger;
}): LiveBarStore {
  if (!options.redisUrl) return new MemoryLiveBarStore();
  return new RedisLiveBarStore(
    createRedis(options.redisUrl, options.logger),
    options.prefix ?? DEFAULT_CACHE_PREFIX,
  );
}
