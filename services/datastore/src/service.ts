import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { LiveBarStore } from '@candlestream/cache';
import {
  BarChunkCache,
  createRedis,
  MemoryLiveBarStore,
  RedisGate,
  RedisLiveBarStore,
} from '@candlestream/cache';
import type { Clock } from '@candlestream/core';
import { systemClock } from '@candlestream/core';
import type { BackfillRequest } from '@candlestream/core';
import { encodeBackfillMessage, encodeReplayMessage } from '@candlestream/core';
import { BackfillJobs, Repository } from '@candlestream/db';
import { createKafka, KafkaPublisher, TOPICS } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { HealthReport, MachineService } from '@candlestream/runtime';
import { listen, Metrics, PendingStops, startMachineService } from '@candlestream/runtime';
import { builtPage, CHARTING_LIBRARY_DIR, WEB_DIST_DIR } from '@candlestream/web';
import { connectActor } from './actors/connect.js';
import type { Deps } from './actors/deps.js';
import { followActor } from './actors/follow.js';
import { followBackfillsActor } from './actors/follow-backfills.js';
import { followReplaysActor } from './actors/follow-replays.js';
import { shutdownActor } from './actors/shutdown.js';
import { createApp } from './app.js';
import { BackfillDesk } from './backfills.js';
import { BarService } from './bars.js';
import { ReplayBars } from './replay-bars.js';
import { ReplayDesk } from './replays.js';
import type { DatastoreConfig } from './config.js';
import { datastoreMachine } from './datastore.machine.js';
import { createAuthenticator } from './http/auth.js';
import { ConcurrencyGate } from './http/concurrency.js';
import type { TrustProxy } from './http/rate-limit.js';
import { admitUpgrade, createRateLimiter } from './http/rate-limit.js';
import { LiveView } from './live.js';
import { attachStream } from './stream/hub.js';
import { SymbolRegistry } from './symbols.js';

export const SERVICE_NAME = 'datastore';

export interface DatastoreOverrides {
  clock?: Clock;
  schema?: string;
}

/** The kernel's running service (port, state, health, done, stop), the live view and backfills. */
export interface Datastore extends MachineService {
  readonly metrics: Metrics;
  readonly live: LiveView;
  readonly backfills: BackfillDesk;
}

export async function startDatastore(
  config: DatastoreConfig,
  logger: Logger,
  overrides: DatastoreOverrides = {},
): Promise<Datastore> {
  const clock = overrides.clock ?? systemClock;
  const now = (): number => clock.now();
  const metrics = new Metrics('datastore');
  const auth = createAuthenticator({
    mode: config.authMode,
    ...(config.jwtSecret ? { jwtSecret: config.jwtSecret } : {}),
    ...(config.jwtPublicKey ? { jwtPublicKey: config.jwtPublicKey } : {}),
    clock,
  });
  if (config.authMode === 'off')
    logger.warn('AUTH_MODE=off: the API answers anyone; set AUTH_MODE=jwt in production');
  const repository = new Repository({
    url: config.databaseUrl,
    ...(overrides.schema ? { schema: overrides.schema } : {}),
    logger,
    clock,
  });
  const redis = config.redisUrl ? createRedis(config.redisUrl, logger) : undefined;
  // After a Redis failure every user of it skips it for a while, instead of each request waiting
  // for the command timeouts; the follow actor turns that into degraded health.
  const redisGate = redis ? new RedisGate({ redis, logger, clock }) : undefined;
  const store: LiveBarStore = redis
    ? new RedisLiveBarStore(redis, config.cachePrefix, redisGate)
    : new MemoryLiveBarStore();
  const cache = new BarChunkCache({
    redis,
    gate: redisGate,
    prefix: config.cachePrefix,
    load: (symbol, interval, from, to) => repository.readBars(symbol, interval, from, to),
    logger,
  });
  const live = new LiveView({ store, cache, logger });
  const bars = new BarService({
    repository,
    cache,
    live,
    clock,
    maxBars: config.maxBars,
    preparedBytes: config.preparedCacheMb * 1_024 * 1_024,
  });
  const symbols = new SymbolRegistry(config.symbols, repository, clock);
  const kafka = createKafka({ brokers: config.kafkaBrokers, clientId: SERVICE_NAME, logger });
  // Requests on backfill-requests (POST /backfills, history misses). Connected on first use and
  // again after a failure, so a broker away at startup costs nothing until someone asks.
  const publisher = new KafkaPublisher(kafka);
  let connecting: Promise<void> | undefined;
  const connected = async (): Promise<KafkaPublisher> => {
    connecting ??= publisher.connect().catch((err: unknown) => {
      connecting = undefined;
      throw err;
    });
    await connecting;
    return publisher;
  };
  const publish = async (request: BackfillRequest): Promise<void> => {
    await (
      await connected()
    ).send(TOPICS.backfillRequests.name, [
      { key: request.symbol, value: encodeBackfillMessage(request) },
    ]);
  };
  const replays = new ReplayDesk({
    publish: async (command) => {
      await (
        await connected()
      ).send(TOPICS.replayCommands.name, [
        { key: command.session, value: encodeReplayMessage(command) },
      ]);
    },
    clock,
    logger,
    idleTimeoutMs: config.replayIdleTimeoutMs,
  });
  const backfillJobs = new BackfillJobs(repository);
  const backfills = new BackfillDesk({ jobs: backfillJobs, repository, publish, clock, logger });
  const limiter = createRateLimiter({
    requestsPerMinute: config.rateLimitPerMinute,
    redis,
    gate: redisGate,
    keyPrefix: config.cachePrefix,
  });

  // The kernel hands /health over before the server listens (see `serve` below).
  let healthOf: () => HealthReport = () => {
    throw new Error('health asked before the service started');
  };
  const app = createApp({
    bars,
    symbols,
    now,
    backfills,
    replays,
    auth,
    limiter,
    trustProxy: config.trustProxy,
    history: new ConcurrencyGate({ clock }),
    health: () => healthOf(),
    metrics,
    logger,
    webDir: builtPage() ? WEB_DIST_DIR : undefined,
    chartingLibraryDir: existsSync(CHARTING_LIBRARY_DIR) ? CHARTING_LIBRARY_DIR : undefined,
  });
  const server = createServer(app);
  const replayBars = new ReplayBars({ kafka, desk: replays, clock, logger });
  const hub = attachStream({
    server,
    feed: live,
    replays: replayBars,
    logger,
    authenticate: admitUpgrade({ auth, limiter, trust: app.get('trust proxy fn') as TrustProxy }),
    isKnownSymbol: (symbol) => symbols.has(symbol),
  });
  const deps: Deps = {
    kafka,
    repository,
    live,
    logger,
    barUpdates: TOPICS.barUpdates,
    groupId: `${SERVICE_NAME}-${randomUUID()}`,
    backfillRequests: TOPICS.backfillRequests,
    backfillStatus: TOPICS.backfillStatus,
    backfillGroupId: `${SERVICE_NAME}-backfills-${randomUUID()}`,
    backfillJobs,
    replayCommands: TOPICS.replayCommands,
    replayStatus: TOPICS.replayStatus,
    replayGroupId: `${SERVICE_NAME}-replays-${randomUUID()}`,
    replays,
    stops: new PendingStops(),
    clock,
    ...(redisGate ? { redisGate } : {}),
  };
  const service = await startMachineService({
    name: SERVICE_NAME,
    machine: datastoreMachine.provide({
      actors: {
        connect: connectActor(deps),
        follow: followActor(deps),
        followBackfills: followBackfillsActor(deps),
        followReplays: followReplaysActor(deps),
        shutdown: shutdownActor(deps),
      },
    }),
    logger,
    metrics,
    // The machine's delays (backoff) run on the service's clock, like every other timer.
    clock,
    // The API's own server answers /health and /metrics, in every state of the machine.
    ops: {
      serve: async (health) => {
        healthOf = health;
        const listening = await listen(server, {
          port: config.port,
          host: config.host,
          portVariable: 'PORT',
        });
        logger.info('listening', {
          port: listening.port,
          auth: config.authMode,
          cache: redis ? 'redis' : 'memory',
        });
        return {
          port: listening.port,
          close: async () => {
            await hub.close();
            await listening.close();
          },
        };
      },
    },
    checks: () => ({
      cache: redis ? 'redis' : 'memory',
      ...(redisGate ? { redis: redisGate.problem ?? 'ok' } : {}),
      // hits: history answered from a cache, rendered pages in memory or chunks in Redis;
      // misses: chunks read from storage.
      cacheStats: {
        ...cache.stats,
        hits: cache.stats.hits + bars.stats.pageHits,
        chunks: { hits: cache.stats.hits, misses: cache.stats.misses },
        pages: { ...bars.stats, bytes: bars.preparedBytes },
        missedInvalidations: cache.missedInvalidations,
      },
      streamClients: hub.clientCount(),
      updatesReceived: live.received,
      historicalFinals: live.historical,
      backfillsOnMiss: backfills.missesPublished,
      replaySessions: replays.size,
      replaySessionsStreamed: replayBars.sessions,
    }),
    // After the consumer left (the machine's stopping state) and the server closed.
    resources: [
      { name: 'replayReaders', close: () => replayBars.close() },
      { name: 'replayDesk', close: () => replays.close() },
      { name: 'backfillPublisher', close: () => publisher.disconnect() },
      { name: 'repository', close: () => repository.close() },
      {
        name: 'liveStore',
        close: () => {
          redisGate?.close();
          return store.close();
        },
      },
    ],
  });

  return { ...service, metrics, live, backfills };
}
