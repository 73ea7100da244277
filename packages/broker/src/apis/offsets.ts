import { ErrorCode } from '../protocol/errors.js';
import { Writer } from '../protocol/writer.js';
import type { Handler } from './types.js';

/** Committed offset metadata longer than this is refused (offset.metadata.max.bytes default). */
const MAX_OFFSET_METADATA_BYTES = 4096;
const OFFSET_METADATA_TOO_LARGE = 12;

/**
 * OffsetCommit v0-7. Layout changes by version: v1 adds generation/member and a per-partition
 * timestamp, v2-4 a retention time, v6 the leader epoch, v7 the group instance id.
 */
export const handleOffsetCommit: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  const groupId = body.string();
  const generationId = v >= 1 ? body.int32() : -1;
  const memberId = v >= 1 ? body.string() : '';
  if (v >= 7) body.nullableString(); // group_instance_id
  if (v >= 2 && v <= 4) body.int64(); // retention_time_ms: offsets are kept until their topic goes.
  const topics = body.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => {
      const index = r.int32();
      const offset = r.int64();
      const leaderEpoch = v >= 6 ? r.int32() : -1;
      if (v === 1) r.int64(); // commit_timestamp
      return { index, offset, leaderEpoch, metadata: r.nullableString() };
    }),
  }));

  const groupError = ctx.groups.validateCommit(groupId, generationId, memberId);
  const now = ctx.clock.now();
  const w = new Writer();
  if (v >= 3) w.int32(0);
  w.array(topics, (w, { name, partitions }) => {
    w.string(name);
    w.array(partitions, (w, p) => {
      let error: number = groupError;
      if (error === ErrorCode.NONE) {
        if (!ctx.topics.partition(name, p.index)) error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        else if (p.metadata !== null && Buffer.byteLength(p.metadata) > MAX_OFFSET_METADATA_BYTES) {
          error = OFFSET_METADATA_TOO_LARGE;
        } else {
          ctx.offsets.commit(groupId, name, p.index, {
            offset: p.offset,
            leaderEpoch: p.leaderEpoch,
            metadata: p.metadata,
            commitTimestampMs: now,
          });
        }
      }
      w.int32(p.index).int16(error);
    });
  });
  return w;
};

/** OffsetFetch v0-5 (v2+: a null topic list means every partition the group committed). */
export const handleOffsetFetch: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  const groupId = body.string();
  const requested = body.nullableArray((r) => ({
    name: r.string(),
    partitions: r.array((r) => r.int32()),
  }));
  const topics =
    requested ??
    [...ctx.offsets.forGroup(groupId)].map(([name, partitions]) => ({
      name,
      partitions: [...partitions.keys()],
    }));
  const w = new Writer();
  if (v >= 3) w.int32(0);
  w.array(topics, (w, { name, partitions }) => {
    w.string(name);
    w.array(partitions, (w, index) => {
      // Nothing committed: offset -1 with no error, which clients read as "use the reset policy".
      const committed = ctx.offsets.get(groupId, name, index);
      w.int32(index).int64(committed?.offset ?? -1);
      if (v >= 5) w.int32(committed?.leaderEpoch ?? -1);
      w.string(committed ? committed.metadata : '').int16(ErrorCode.NONE);
    });
  });
  if (v >= 2) w.int16(ErrorCode.NONE);
  return w;
};
