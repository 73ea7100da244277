/** A topic the platform creates itself (the contract: nothing depends on broker auto-creation). */
export interface TopicSpec {
  name: string;
  partitions: number;
  /** 1 for the embedded broker and a single-node Redpanda; raise it on a cluster. */
  replicationFactor?: number;
  /** Topic configs, e.g. `retention.ms`. */
  configs?: Record<string, string>;
}

const DAY_MS = 24 * 60 * 60 * 1_000;
const WEEK_MS = 7 * DAY_MS;

/**
 * The fixed topics. Trades are keyed by symbol, so one symbol's trades stay in one partition and
 * in order; 6 partitions let up to 6 consumers share the load.
 */
export const TOPICS = {
  ticks: { name: 'tick-data', partitions: 6 },
  /** Refused trade messages with the reason in headers; one partition keeps them in arrival order. */
  ticksDlq: {
    name: 'tick-data.dlq',
    partitions: 1,
    configs: { 'retention.ms': String(4 * WEEK_MS) },
  },
  barUpdates: { name: 'bar-updates', partitions: 6, configs: { 'retention.ms': String(WEEK_MS) } },
  /** Asks for history (datastore → coordinator), keyed by symbol: one symbol's in order. */
  backfillRequests: {
    name: 'backfill-requests',
    partitions: 1,
    configs: { 'retention.ms': String(WEEK_MS) },
  },
  /** One command per job (coordinator → producer and dynamic consumer), keyed by job id. */
  backfillCommands: {
    name: 'backfill-commands',
    partitions: 6,
    configs: { 'retention.ms': String(WEEK_MS) },
  },
  /** Every participant's reports on jobs, keyed by job id: one job's in order. */
  backfillStatus: {
    name: 'backfill-status',
    partitions: 6,
    configs: { 'retention.ms': String(WEEK_MS) },
  },
  /** Replay sessions' commands (datastore → simulator), keyed by session: one session's in order. */
  replayCommands: {
    name: 'replay-commands',
    partitions: 6,
    configs: { 'retention.ms': String(DAY_MS) },
  },
  /** Replay sessions' status (simulator → datastore), keyed by session. */
  replayStatus: {
    name: 'replay-status',
    partitions: 6,
    configs: { 'retention.ms': String(DAY_MS) },
  },
} as const satisfies Record<string, TopicSpec>;

/**
 * A job's dynamic topic (`backfill.<SYMBOL>.<job id>`): one partition, so its candles and the
 * end marker after them are read in the order written.
 */
export function backfillTopic(name: string): TopicSpec {
  return { name, partitions: 1, configs: { 'retention.ms': String(WEEK_MS) } };
}

/** A replay session's topic (`replay.<session>`) keeps its trades this long. */
export const REPLAY_RETENTION_MS = DAY_MS;

/**
 * A replay session's topic: one partition, so consumers read the trades of every symbol in the
 * replayed (ts, id) order, as they were published.
 */
export function replayTopic(name: string): TopicSpec {
  return { name, partitions: 1, configs: { 'retention.ms': String(REPLAY_RETENTION_MS) } };
}

/** Headers a dead-letter message carries beside the original key and bytes. */
export const DLQ_HEADERS = {
  reason: 'dlq-reason',
  topic: 'dlq-source-topic',
  partition: 'dlq-source-partition',
  offset: 'dlq-source-offset',
  failedAt: 'dlq-failed-at',
  /** Set when the value was cut to fit the broker's message limit: why, and to how many bytes. */
  truncated: 'dlq-truncated',
  /** The original value's size in bytes, on a truncated dead letter. */
  originalBytes: 'dlq-original-bytes',
} as const;
