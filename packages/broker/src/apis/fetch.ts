import { ErrorCode, type ErrorCodeValue } from '../protocol/errors.js';
import { Writer } from '../protocol/writer.js';
import type { PartitionLog } from '../storage/partition-log.js';
import type { BrokerContext, Handler } from './types.js';

interface FetchPartition {
  index: number;
  fetchOffset: number;
  maxBytes: number;
}

interface PartitionAnswer {
  index: number;
  error: ErrorCodeValue;
  highWatermark: number;
  logStartOffset: number;
  batches: Buffer[];
  bytes: number;
}

/**
 * Fetch v4-11. Long poll: with less than min_bytes available the request parks until an append
 * to one of its partitions or max_wait_ms (protocol guide, Fetch). max_bytes and the partition
 * limits are soft for the first batch only (KIP-74). Fetch sessions (KIP-227) are declined by
 * always answering session_id 0, which makes clients send full fetches.
 */
export const handleFetch: Handler = async (ctx, { header, body, signal }) => {
  const v = header.apiVersion;
  body.int32(); // replica_id: always a consumer here.
  const maxWaitMs = body.int32();
  const minBytes = body.int32();
  const maxBytes = v >= 3 ? body.int32() : 0x7fffffff;
  if (v >= 4) body.int8(); // isolation_level: without transactions LSO = high watermark.
  if (v >= 7) {
    body.int32(); // session_id
    body.int32(); // session_epoch
  }
  const topics = body.array((r) => ({
    name: r.string(),
    partitions: r.array((r): FetchPartition => {
      const index = r.int32();
      if (v >= 9) r.int32(); // current_leader_epoch
      const fetchOffset = r.int64();
      if (v >= 5) r.int64(); // log_start_offset (followers only)
      return { index, fetchOffset, maxBytes: r.int32() };
    }),
  }));
  if (v >= 7) body.array((r) => ({ name: r.string(), partitions: r.array((r) => r.int32()) }));
  if (v >= 11) body.string(); // rack_id

  const deadline = ctx.clock.now() + Math.max(0, maxWaitMs);
  let answer = collect(ctx, topics, maxBytes);
  while (answer.bytes < Math.max(1, minBytes) && !answer.hasError && !signal.aborted) {
    const remaining = deadline - ctx.clock.now();
    if (remaining <= 0) break;
    await waitForAny(ctx, topics, remaining, signal);
    answer = collect(ctx, topics, maxBytes);
  }

  const w = new Writer();
  if (v >= 1) w.int32(0);
  if (v >= 7) w.int16(ErrorCode.NONE).int32(0);
  w.array(answer.topics, (w, topic) => {
    w.string(topic.name);
    w.array(topic.partitions, (w, p) => {
      w.int32(p.index).int16(p.error).int64(p.highWatermark).int64(p.highWatermark);
      if (v >= 5) w.int64(p.logStartOffset);
      w.array([], () => undefined); // aborted_transactions
      if (v >= 11) w.int32(-1); // preferred_read_replica
      w.int32(p.bytes);
      for (const batch of p.batches) w.raw(batch);
    });
  });
  return w;
};

function collect(
  ctx: BrokerContext,
  topics: { name: string; partitions: FetchPartition[] }[],
  maxBytes: number,
): { topics: { name: string; partitions: PartitionAnswer[] }[]; bytes: number; hasError: boolean } {
  let bytes = 0;
  let hasError = false;
  const out = topics.map(({ name, partitions }) => ({
    name,
    partitions: partitions.map((p): PartitionAnswer => {
      const log = ctx.topics.partition(name, p.index);
      const answer: PartitionAnswer = {
        index: p.index,
        error: ErrorCode.NONE,
        highWatermark: -1,
        logStartOffset: -1,
        batches: [],
        bytes: 0,
      };
      if (!log) {
        hasError = true;
        return { ...answer, error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION };
      }
      answer.highWatermark = log.logEndOffset;
      answer.logStartOffset = log.logStartOffset;
      if (p.fetchOffset < answer.logStartOffset || p.fetchOffset > answer.highWatermark) {
        hasError = true;
        return { ...answer, error: ErrorCode.OFFSET_OUT_OF_RANGE };
      }
      const budget = maxBytes - bytes;
      if (budget <= 0 || p.fetchOffset === answer.highWatermark) return answer;
      const read = log.read(p.fetchOffset, Math.min(p.maxBytes, budget));
      bytes += read.bytes;
      return { ...answer, batches: read.batches, bytes: read.bytes };
    }),
  }));
  return { topics: out, bytes, hasError };
}

function waitForAny(
  ctx: BrokerContext,
  topics: { name: string; partitions: FetchPartition[] }[],
  timeoutMs: number,
  signal: AbortSignal,
): Promise<void> {
  const done = new AbortController();
  const onAbort = (): void => done.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const timer = ctx.clock.setTimer(() => done.abort(), timeoutMs);
  const waits: Promise<void>[] = [];
  for (const { name, partitions } of topics) {
    for (const p of partitions) {
      const log: PartitionLog | undefined = ctx.topics.partition(name, p.index);
      if (log) waits.push(log.waitForAppend(done.signal));
    }
  }
  waits.push(
    new Promise((resolve) =>
      done.signal.addEventListener('abort', () => resolve(), { once: true }),
    ),
  );
  return Promise.race(waits).finally(() => {
    timer.cancel();
    signal.removeEventListener('abort', onAbort);
    done.abort();
  });
}
