import { ErrorCode } from '../protocol/errors.js';
import { Writer } from '../protocol/writer.js';
import type { Topic } from '../storage/topic-store.js';
import type { Handler } from './types.js';

/** Metadata v0-6: one broker that leads every partition, with itself as the only replica. */
export const handleMetadata: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  // v0: an empty list means all topics; v1+: null means all, empty means none.
  const requested = v === 0 ? body.array((r) => r.string()) : body.nullableArray((r) => r.string());
  const allowAutoCreate = v >= 4 ? body.bool() : true;
  const all = requested === null || (v === 0 && requested.length === 0);

  const topics: { name: string; error: number; topic: Topic | undefined }[] = [];
  if (all) {
    for (const topic of ctx.topics.list())
      topics.push({ name: topic.name, error: ErrorCode.NONE, topic });
  } else {
    for (const name of requested) {
      let topic = ctx.topics.get(name);
      let error: number = ErrorCode.NONE;
      if (!topic) {
        const nameCheck = ctx.topics.validateName(name);
        if (nameCheck.error !== ErrorCode.NONE) error = nameCheck.error;
        else if (ctx.allowAutoTopicCreation && allowAutoCreate) {
          ctx.topics.create(name, -1, new Map());
          topic = ctx.topics.get(name);
          ctx.logger.info('auto-created topic', { topic: name });
        } else error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      }
      topics.push({ name, error, topic });
    }
  }

  const w = new Writer();
  if (v >= 3) w.int32(0);
  w.array([ctx.nodeId], (w, nodeId) => {
    w.int32(nodeId).string(ctx.advertisedHost).int32(ctx.advertisedPort);
    if (v >= 1) w.string(null);
  });
  if (v >= 2) w.string(ctx.clusterId);
  if (v >= 1) w.int32(ctx.nodeId);
  w.array(topics, (w, { name, error, topic }) => {
    w.int16(error).string(name);
    if (v >= 1) w.bool(false);
    w.array(topic?.partitions ?? [], (w, _log, index) => {
      w.int16(ErrorCode.NONE).int32(index).int32(ctx.nodeId);
      w.array([ctx.nodeId], (w, id) => w.int32(id));
      w.array([ctx.nodeId], (w, id) => w.int32(id));
      if (v >= 5) w.array([], () => undefined);
    });
  });
  return w;
};
