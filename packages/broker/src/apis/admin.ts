import { ErrorCode } from '../protocol/errors.js';
import { Writer } from '../protocol/writer.js';
import type { Handler } from './types.js';

/** CreateTopics v0-4. A single node: replication factor must be 1 or -1 (broker default). */
export const handleCreateTopics: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  const topics = body.array((r) => ({
    name: r.string(),
    numPartitions: r.int32(),
    replicationFactor: r.int16(),
    assignments: r.array((r) => ({ index: r.int32(), brokers: r.array((r) => r.int32()) })),
    configs: r.array((r) => ({ name: r.string(), value: r.nullableString() })),
  }));
  body.int32(); // timeout_ms: creation is synchronous.
  const validateOnly = v >= 1 ? body.bool() : false;

  const results = topics.map((t) => {
    if (t.replicationFactor !== -1 && t.replicationFactor !== 1 && t.assignments.length === 0) {
      return {
        name: t.name,
        error: ErrorCode.INVALID_REPLICATION_FACTOR,
        message: 'this broker is a single node: replication factor must be 1',
      };
    }
    if (t.assignments.some((a) => a.brokers.some((id) => id !== ctx.nodeId))) {
      return {
        name: t.name,
        error: ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        message: `only broker ${ctx.nodeId} exists`,
      };
    }
    const count = t.assignments.length > 0 ? t.assignments.length : t.numPartitions;
    const configs = new Map<string, string>();
    for (const c of t.configs) if (c.value !== null) configs.set(c.name, c.value);
    const result = ctx.topics.create(t.name, count, configs, validateOnly);
    if (result.error === ErrorCode.NONE && !validateOnly)
      ctx.logger.info('topic created', {
        topic: t.name,
        partitions: count === -1 ? ctx.topics.defaultPartitions : count,
      });
    return { name: t.name, error: result.error, message: result.message };
  });

  const w = new Writer();
  if (v >= 2) w.int32(0);
  w.array(results, (w, r) => {
    w.string(r.name).int16(r.error);
    if (v >= 1) w.string(r.message);
  });
  return w;
};

/** DeleteTopics v0-3; the topic's committed group offsets go with it, as in Kafka. */
export const handleDeleteTopics: Handler = (ctx, { header, body }) => {
  const names = body.array((r) => r.string());
  body.int32();
  const w = new Writer();
  if (header.apiVersion >= 1) w.int32(0);
  w.array(names, (w, name) => {
    const result = ctx.topics.delete(name);
    if (result.error === ErrorCode.NONE) {
      ctx.offsets.deleteTopic(name);
      ctx.logger.info('topic deleted', { topic: name });
    }
    w.string(name).int16(result.error);
  });
  return w;
};

/** CreatePartitions v0-1: partitions can only be added. */
export const handleCreatePartitions: Handler = (ctx, { body }) => {
  const topics = body.array((r) => ({
    name: r.string(),
    count: r.int32(),
    assignments: r.nullableArray((r) => r.array((r) => r.int32())),
  }));
  body.int32();
  const validateOnly = body.bool();
  const w = new Writer().int32(0);
  w.array(topics, (w, t) => {
    const result = ctx.topics.addPartitions(t.name, t.count, validateOnly);
    w.string(t.name).int16(result.error).string(result.message);
  });
  return w;
};

/** Resource types of DescribeConfigs (KIP-133). */
const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;
/** config_source values (KIP-226). */
const SOURCE_TOPIC_OVERRIDE = 1;
const SOURCE_STATIC_BROKER = 4;
const SOURCE_DEFAULT = 5;

/** DescribeConfigs v0-2 for topics (effective values) and the broker (a few static ones). */
export const handleDescribeConfigs: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  const resources = body.array((r) => ({
    type: r.int8(),
    name: r.string(),
    keys: r.nullableArray((r) => r.string()),
  }));
  if (v >= 1) body.bool(); // include_synonyms: no synonyms are reported.

  const w = new Writer().int32(0);
  w.array(resources, (w, res) => {
    let error: number = ErrorCode.NONE;
    let message: string | null = null;
    let entries: { name: string; value: string; isDefault: boolean }[] = [];
    if (res.type === RESOURCE_TOPIC) {
      const topic = ctx.topics.get(res.name);
      if (topic) entries = ctx.topics.describe(topic);
      else {
        error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        message = `unknown topic ${res.name}`;
      }
    } else if (res.type === RESOURCE_BROKER) {
      entries = [
        { name: 'broker.id', value: String(ctx.nodeId), isDefault: false },
        {
          name: 'auto.create.topics.enable',
          value: String(ctx.allowAutoTopicCreation),
          isDefault: false,
        },
        { name: 'num.partitions', value: String(ctx.topics.defaultPartitions), isDefault: false },
        { name: 'message.max.bytes', value: String(ctx.maxMessageBytes), isDefault: false },
      ];
    } else {
      error = ErrorCode.INVALID_REQUEST;
      message = `resource type ${res.type} is not supported`;
    }
    if (res.keys !== null) {
      const keys = new Set(res.keys);
      entries = entries.filter((e) => keys.has(e.name));
    }
    w.int16(error).string(message).int8(res.type).string(res.name);
    w.array(entries, (w, e) => {
      w.string(e.name).string(e.value).bool(false);
      if (v === 0) w.bool(e.isDefault);
      else
        w.int8(
          res.type === RESOURCE_BROKER
            ? SOURCE_STATIC_BROKER
            : e.isDefault
              ? SOURCE_DEFAULT
              : SOURCE_TOPIC_OVERRIDE,
        );
      w.bool(false);
      if (v >= 1) w.array([], () => undefined);
    });
  });
  return w;
};

/**
 * InitProducerId v0-1: hands out producer ids so idempotent producers can start. Sequence
 * numbers are not enforced (single node, no retries across leaders) and transactions are not
 * offered.
 */
export const handleInitProducerId: Handler = (ctx, { body }) => {
  const transactionalId = body.nullableString();
  body.int32();
  const w = new Writer().int32(0);
  if (transactionalId !== null) return w.int16(ErrorCode.INVALID_REQUEST).int64(-1).int16(-1);
  return w.int16(ErrorCode.NONE).int64(ctx.nextProducerId()).int16(0);
};
