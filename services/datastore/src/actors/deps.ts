import type { Clock } from '@candlestream/core';
import type { BackfillJobs, Repository } from '@candlestream/db';
import type { KafkaClient, TopicSpec } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { PendingStops } from '@candlestream/runtime';
import type { LiveView } from '../live.js';
import type { ReplayDesk } from '../replays.js';

export interface Deps {
  kafka: KafkaClient;
  repository: Repository;
  live: LiveView;
  logger: Logger;
  barUpdates: TopicSpec;
  /** This instance's own group: every datastore sees every update. */
  groupId: string;
  /** backfill-requests (published on history misses and POST /backfills) and backfill-status. */
  backfillRequests: TopicSpec;
  backfillStatus: TopicSpec;
  /** This instance's own group on backfill-status, from the newest offsets: only jobs ending now. */
  backfillGroupId: string;
  /** replay-commands (POST /replays…) and replay-status, followed by its own group from now on. */
  replayCommands: TopicSpec;
  replayStatus: TopicSpec;
  replayGroupId: string;
  replays: ReplayDesk;
  /** The coordinator's table, read for a report that lacks the job's range. */
  backfillJobs: Pick<BackfillJobs, 'get'>;
  /**
   * The follow actors' consumers leaving its group (cleanup cannot await it): connect waits for it
   * before a new member joins, shutdown before the server and pools close.
   */
  stops: PendingStops;
  /** Broker probe period and timeout (packages/kafka watchBroker defaults otherwise). */
  brokerProbe?: { intervalMs: number; timeoutMs: number };
  /** packages/cache RedisGate, when REDIS_URL is set: while it skips Redis, health is degraded. */
  redisGate?: { watch(listener: (problem: string | undefined) => void): () => void };
  /** The clock the broker probe runs on; default systemClock. */
  clock?: Clock;
}
