import { ErrorCode } from '../protocol/errors.js';
import { Writer } from '../protocol/writer.js';
import type { Handler } from './types.js';

/** Special timestamps of ListOffsets (protocol guide; KIP-79). */
const LATEST_TIMESTAMP = -1;
const EARLIEST_TIMESTAMP = -2;

/** ListOffsets v0-3: earliest, latest, or the first offset at or after a timestamp. */
export const handleListOffsets: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  body.int32(); // replica_id
  if (v >= 2) body.int8(); // isolation_level: no transactions, so both levels read the same.
  const topics = body.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => {
      const index = r.int32();
      const timestamp = r.int64();
      if (v === 0) r.int32(); // max_num_offsets: v0 always gets one offset here.
      return { index, timestamp };
    }),
  }));

  const w = new Writer();
  if (v >= 2) w.int32(0);
  w.array(topics, (w, { name, partitions }) => {
    w.string(name);
    w.array(partitions, (w, { index, timestamp }) => {
      const log = ctx.topics.partition(name, index);
      let error: number = ErrorCode.NONE;
      let offset = -1;
      let foundTimestamp = -1;
      if (!log) error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
      else if (timestamp === LATEST_TIMESTAMP) offset = log.logEndOffset;
      else if (timestamp === EARLIEST_TIMESTAMP) offset = log.logStartOffset;
      else {
        // No record that late: offset -1 and timestamp -1, as Kafka answers (v1+).
        const found = log.offsetForTimestamp(timestamp);
        if (found) ({ offset, timestamp: foundTimestamp } = found);
      }
      w.int32(index).int16(error);
      if (v === 0) w.array(offset >= 0 ? [offset] : [], (w, o) => w.int64(o));
      else w.int64(foundTimestamp).int64(offset);
    });
  });
  return w;
};
