import { ErrorCode, type ErrorCodeValue } from '../protocol/errors.js';
import { Writer } from '../protocol/writer.js';
import { parseProducedBatches } from '../records/record-batch.js';
import type { Handler } from './types.js';

interface PartitionResult {
  index: number;
  error: ErrorCodeValue;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
}

/**
 * Produce v3-7 (magic 2 batches only; v0-2 are advertised but refused, see API_TABLE). Batches
 * of every codec are stored as sent, never decompressed. On a single node acks=1 and acks=all mean the same:
 * the batch is in the log (and written to the segment file) before the answer. acks=0 gets no
 * response at all, as the protocol guide specifies.
 */
export const handleProduce: Handler = (ctx, { header, body }) => {
  const v = header.apiVersion;
  body.nullableString(); // transactional_id: transactions are not supported, plain appends are.
  const acks = body.int16();
  body.int32(); // timeout_ms: appends are synchronous, nothing to wait for.
  const topics = body.array((r) => ({
    name: r.string(),
    partitions: r.array((r) => ({ index: r.int32(), records: r.nullableBytes() })),
  }));

  const validAcks = acks === -1 || acks === 0 || acks === 1;
  const now = ctx.clock.now();
  const results = topics.map(({ name, partitions }) => {
    const topic = ctx.topics.get(name);
    return {
      name,
      partitions: partitions.map(({ index, records }): PartitionResult => {
        const result: PartitionResult = {
          index,
          error: ErrorCode.NONE,
          baseOffset: -1,
          logAppendTimeMs: -1,
          logStartOffset: -1,
        };
        const log = topic?.partitions[index];
        if (!validAcks) return { ...result, error: ErrorCode.INVALID_REQUIRED_ACKS };
        if (!topic || !log) return { ...result, error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
        if (records === null || records.length === 0)
          return { ...result, error: ErrorCode.CORRUPT_MESSAGE };
        const parsed = parseProducedBatches(records, v);
        if (!parsed.ok) {
          ctx.logger.warn('produce rejected', {
            topic: name,
            partition: index,
            reason: parsed.message,
          });
          return { ...result, error: parsed.error };
        }
        if (parsed.batches.some((b) => b.data.length > ctx.maxMessageBytes)) {
          return { ...result, error: ErrorCode.MESSAGE_TOO_LARGE };
        }
        const baseOffset = log.append(parsed.batches, now, topic.logAppendTime);
        return {
          index,
          error: ErrorCode.NONE,
          baseOffset,
          logAppendTimeMs: topic.logAppendTime ? now : -1,
          logStartOffset: log.logStartOffset,
        };
      }),
    };
  });

  if (acks === 0) return null;
  const w = new Writer();
  w.array(results, (w, topic) => {
    w.string(topic.name);
    w.array(topic.partitions, (w, p) => {
      w.int32(p.index).int16(p.error).int64(p.baseOffset).int64(p.logAppendTimeMs);
      if (v >= 5) w.int64(p.logStartOffset);
    });
  });
  w.int32(0);
  return w;
};
