import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { silentLogger, type Logger } from '@candlestream/logger';
import { ErrorCode, type ErrorCodeValue } from '../protocol/errors.js';
import { PartitionLog, type RetentionPolicy } from './partition-log.js';

/** Kafka's legal topic names (Topic.validate): 1-249 of [a-zA-Z0-9._-], not "." or "..". */
const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]{1,249}$/;
/** Upper bound on partitions per topic: far beyond what the platform uses, low enough to stay sane. */
export const MAX_PARTITIONS = 1000;
const TOPIC_META_FILE = 'topic.json';

/** Broker-wide defaults for the topic configs the broker understands. */
export interface TopicDefaults extends RetentionPolicy {
  numPartitions: number;
}

export interface TopicConfigEntry {
  name: string;
  value: string;
  isDefault: boolean;
}

/** Topic configs interpreted by the broker; others are stored and described but have no effect. */
const NUMERIC_CONFIGS = ['retention.ms', 'retention.bytes', 'segment.bytes', 'segment.ms'] as const;

export class Topic {
  constructor(
    readonly name: string,
    readonly partitions: PartitionLog[],
    readonly configs: Map<string, string>,
  ) {}

  get logAppendTime(): boolean {
    return this.configs.get('message.timestamp.type') === 'LogAppendTime';
  }
}

export interface StoreResult {
  error: ErrorCodeValue;
  message: string | null;
}
const OK: StoreResult = { error: ErrorCode.NONE, message: null };

/**
 * All topics and their partition logs. With a data directory each topic is a folder holding
 * `topic.json` (partition count and config overrides) and one folder of segment files per
 * partition.
 */
export class TopicStore {
  private readonly topics = new Map<string, Topic>();

  private constructor(
    private readonly dataDir: string | null,
    private readonly defaults: TopicDefaults,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {}

  static open(
    dataDir: string | null,
    defaults: TopicDefaults,
    now: () => number,
    logger: Logger = silentLogger(),
  ): TopicStore {
    const store = new TopicStore(
      dataDir === null ? null : join(dataDir, 'topics'),
      defaults,
      now,
      logger,
    );
    if (store.dataDir !== null) {
      mkdirSync(store.dataDir, { recursive: true });
      for (const name of readdirSync(store.dataDir)) {
        const metaPath = join(store.dataDir, name, TOPIC_META_FILE);
        if (!existsSync(metaPath)) continue;
        const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as {
          partitions: number;
          configs: Record<string, string>;
        };
        const configs = new Map(Object.entries(meta.configs));
        const policy = store.policyFor(configs);
        const partitions = Array.from({ length: meta.partitions }, (_, i) =>
          PartitionLog.open(
            join(store.dataDir as string, name, String(i)),
            policy,
            now(),
            logger.child({ topic: name, partition: i }),
          ),
        );
        store.topics.set(name, new Topic(name, partitions, configs));
      }
    }
    return store;
  }

  get defaultPartitions(): number {
    return this.defaults.numPartitions;
  }

  list(): Topic[] {
    return [...this.topics.values()];
  }

  get(name: string): Topic | undefined {
    return this.topics.get(name);
  }

  partition(name: string, index: number): PartitionLog | undefined {
    return this.topics.get(name)?.partitions[index];
  }

  policyFor(configs: ReadonlyMap<string, string>): RetentionPolicy {
    const pick = (key: string, fallback: number): number => {
      const raw = configs.get(key);
      return raw === undefined ? fallback : Number(raw);
    };
    return {
      retentionMs: pick('retention.ms', this.defaults.retentionMs),
      retentionBytes: pick('retention.bytes', this.defaults.retentionBytes),
      segmentBytes: pick('segment.bytes', this.defaults.segmentBytes),
      segmentMs: pick('segment.ms', this.defaults.segmentMs),
    };
  }

  /** Effective configs of a topic: overrides first, then the broker defaults the broker applies. */
  describe(topic: Topic): TopicConfigEntry[] {
    const policy = this.policyFor(topic.configs);
    const effective: Record<string, string> = {
      'cleanup.policy': 'delete',
      'message.timestamp.type': 'CreateTime',
      'retention.ms': String(policy.retentionMs),
      'retention.bytes': String(policy.retentionBytes),
      'segment.bytes': String(policy.segmentBytes),
      'segment.ms': String(policy.segmentMs),
      'compression.type': 'producer',
    };
    const entries: TopicConfigEntry[] = [];
    for (const [name, value] of topic.configs) entries.push({ name, value, isDefault: false });
    for (const [name, value] of Object.entries(effective)) {
      if (!topic.configs.has(name)) entries.push({ name, value, isDefault: true });
    }
    return entries;
  }

  validateName(name: string): StoreResult {
    if (!TOPIC_NAME_PATTERN.test(name) || name === '.' || name === '..') {
      return {
        error: ErrorCode.INVALID_TOPIC_EXCEPTION,
        message: `illegal topic name ${JSON.stringify(name)}`,
      };
    }
    return OK;
  }

  validateConfigs(configs: ReadonlyMap<string, string>): StoreResult {
    for (const key of NUMERIC_CONFIGS) {
      const raw = configs.get(key);
      if (raw !== undefined && !/^-?\d+$/.test(raw)) {
        return { error: ErrorCode.INVALID_CONFIG, message: `${key} must be an integer` };
      }
    }
    const type = configs.get('message.timestamp.type');
    if (type !== undefined && type !== 'CreateTime' && type !== 'LogAppendTime') {
      return {
        error: ErrorCode.INVALID_CONFIG,
        message: 'message.timestamp.type must be CreateTime or LogAppendTime',
      };
    }
    return OK;
  }

  /** Checks everything CreateTopics checks; with `validateOnly` nothing is created. */
  create(
    name: string,
    numPartitions: number,
    configs: ReadonlyMap<string, string>,
    validateOnly = false,
  ): StoreResult {
    const nameCheck = this.validateName(name);
    if (nameCheck.error !== ErrorCode.NONE) return nameCheck;
    if (this.topics.has(name))
      return { error: ErrorCode.TOPIC_ALREADY_EXISTS, message: `topic ${name} already exists` };
    const count = numPartitions === -1 ? this.defaults.numPartitions : numPartitions;
    if (count < 1 || count > MAX_PARTITIONS) {
      return {
        error: ErrorCode.INVALID_PARTITIONS,
        message: `partitions must be 1..${MAX_PARTITIONS}`,
      };
    }
    const configCheck = this.validateConfigs(configs);
    if (configCheck.error !== ErrorCode.NONE || validateOnly) return configCheck;
    const topicDir = this.dataDir === null ? null : join(this.dataDir, name);
    const policy = this.policyFor(configs);
    const partitions = Array.from({ length: count }, (_, i) =>
      PartitionLog.open(topicDir === null ? null : join(topicDir, String(i)), policy, this.now()),
    );
    const topic = new Topic(name, partitions, new Map(configs));
    this.topics.set(name, topic);
    this.saveMeta(topic);
    return OK;
  }

  delete(name: string): StoreResult {
    const topic = this.topics.get(name);
    if (!topic)
      return { error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message: `unknown topic ${name}` };
    this.topics.delete(name);
    for (const partition of topic.partitions) partition.close();
    if (this.dataDir !== null) rmSync(join(this.dataDir, name), { recursive: true, force: true });
    return OK;
  }

  addPartitions(name: string, newTotal: number, validateOnly = false): StoreResult {
    const topic = this.topics.get(name);
    if (!topic)
      return { error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, message: `unknown topic ${name}` };
    if (newTotal <= topic.partitions.length || newTotal > MAX_PARTITIONS) {
      return {
        error: ErrorCode.INVALID_PARTITIONS,
        message: `topic ${name} has ${topic.partitions.length} partitions; the new count must be larger and at most ${MAX_PARTITIONS}`,
      };
    }
    if (validateOnly) return OK;
    const policy = this.policyFor(topic.configs);
    for (let i = topic.partitions.length; i < newTotal; i++) {
      topic.partitions.push(
        PartitionLog.open(
          this.dataDir === null ? null : join(this.dataDir, name, String(i)),
          policy,
          this.now(),
        ),
      );
    }
    this.saveMeta(topic);
    return OK;
  }

  private saveMeta(topic: Topic): void {
    if (this.dataDir === null) return;
    const dir = join(this.dataDir, topic.name);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, TOPIC_META_FILE + '.tmp');
    writeFileSync(
      tmp,
      JSON.stringify({
        partitions: topic.partitions.length,
        configs: Object.fromEntries(topic.configs),
      }),
    );
    // Rename is atomic: a crash leaves the old or the new metadata, never half of one.
    renameSync(tmp, join(dir, TOPIC_META_FILE));
  }

  enforceRetention(): void {
    const now = this.now();
    for (const topic of this.topics.values())
      for (const partition of topic.partitions) partition.enforceRetention(now);
  }

  flush(): void {
    for (const topic of this.topics.values())
      for (const partition of topic.partitions) partition.flush();
  }

  close(): void {
    for (const topic of this.topics.values())
      for (const partition of topic.partitions) partition.close();
  }
}
