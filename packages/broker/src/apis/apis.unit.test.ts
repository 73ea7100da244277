import { describe, expect, it } from 'vitest';
import { silentLogger } from '@candlestream/logger';
import { ManualClock } from '../clock.js';
import { GroupCoordinator } from '../groups/group-coordinator.js';
import { OffsetStore } from '../groups/offset-store.js';
import { ErrorCode } from '../protocol/errors.js';
import { Reader } from '../protocol/reader.js';
import { Writer } from '../protocol/writer.js';
import { encodeBatch } from '../records/record-batch.js';
import { TopicStore } from '../storage/topic-store.js';
import { API_BY_KEY } from './index.js';
import type { BrokerContext } from './types.js';

/** A broker context with in-memory storage only: handlers run without sockets or files. */
function context(): BrokerContext {
  const clock = new ManualClock();
  const offsets = OffsetStore.open(null);
  let producerId = 1;
  return {
    nodeId: 0,
    advertisedHost: 'localhost',
    advertisedPort: 9092,
    clusterId: 'test',
    topics: TopicStore.open(
      null,
      {
        numPartitions: 1,
        retentionMs: -1,
        retentionBytes: -1,
        segmentBytes: 1 << 20,
        segmentMs: 1 << 30,
      },
      () => clock.now(),
    ),
    groups: new GroupCoordinator({
      clock,
      offsets,
      minSessionTimeoutMs: 1000,
      maxSessionTimeoutMs: 60_000,
      initialRebalanceDelayMs: 0,
    }),
    offsets,
    clock,
    logger: silentLogger(),
    allowAutoTopicCreation: false,
    maxMessageBytes: 1 << 20,
    nextProducerId: () => producerId++,
  };
}

async function call(
  ctx: BrokerContext,
  apiKey: number,
  apiVersion: number,
  body: Buffer,
): Promise<Reader | null> {
  const api = API_BY_KEY.get(apiKey);
  if (!api) throw new Error(`no api ${apiKey}`);
  const out = await api.handle(ctx, {
    header: { apiKey, apiVersion, correlationId: 1, clientId: 'unit' },
    body: new Reader(body),
    clientHost: '127.0.0.1',
    signal: new AbortController().signal,
  });
  return out === null ? null : new Reader(out.toBuffer());
}

describe('request handlers on hand-built frames', () => {
  it('Metadata v1 reports an unknown topic as UNKNOWN_TOPIC_OR_PARTITION and does not create it', async () => {
    const ctx = context();
    const r = (await call(
      ctx,
      3,
      1,
      new Writer().array(['nope'], (w, t) => w.string(t)).toBuffer(),
    )) as Reader;
    r.array((b) => [b.int32(), b.string(), b.int32(), b.nullableString()]); // brokers
    expect(r.int32()).toBe(0); // controller
    const [topic] = r.array((t) => ({
      error: t.int16(),
      name: t.string(),
      internal: t.bool(),
      partitions: t.array((p) => p.int16()),
    }));
    expect(topic).toEqual({
      error: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
      name: 'nope',
      internal: false,
      partitions: [],
    });
    expect(ctx.topics.get('nope')).toBeUndefined();
  });

  it('CreateTopics v3 then Produce v7 assigns offsets; acks=0 gets no response', async () => {
    const ctx = context();
    const create = new Writer()
      .array(['t'], (w, name) =>
        w
          .string(name)
          .int32(2)
          .int16(1)
          .array([], () => undefined)
          .array([], () => undefined),
      )
      .int32(1000)
      .bool(false)
      .toBuffer();
    const created = (await call(ctx, 19, 3, create)) as Reader;
    created.int32();
    expect(created.array((t) => [t.string(), t.int16(), t.nullableString()])).toEqual([
      ['t', 0, null],
    ]);

    const produce = (acks: number): Buffer =>
      new Writer()
        .string(null)
        .int16(acks)
        .int32(1000)
        .array(['t'], (w, name) =>
          w.string(name).array([1], (w, p) =>
            w.int32(p).bytes(
              encodeBatch([
                { value: Buffer.from('x'), timestamp: 1 },
                { value: Buffer.from('y'), timestamp: 2 },
              ]),
            ),
          ),
        )
        .toBuffer();
    expect(await call(ctx, 0, 7, produce(0))).toBeNull();
    const r = (await call(ctx, 0, 7, produce(-1))) as Reader;
    const [topic] = r.array((t) => ({
      name: t.string(),
      parts: t.array((p) => [p.int32(), p.int16(), p.int64(), p.int64(), p.int64()]),
    }));
    expect(topic).toEqual({ name: 't', parts: [[1, 0, 2, -1, 0]] });
    expect(ctx.topics.partition('t', 1)?.logEndOffset).toBe(4);
  });

  it('Produce with acks=2 is refused with INVALID_REQUIRED_ACKS', async () => {
    const ctx = context();
    ctx.topics.create('t', 1, new Map());
    const body = new Writer()
      .string(null)
      .int16(2)
      .int32(1000)
      .array(['t'], (w, name) =>
        w
          .string(name)
          .array([0], (w, p) =>
            w.int32(p).bytes(encodeBatch([{ value: Buffer.from('x'), timestamp: 1 }])),
          ),
      )
      .toBuffer();
    const r = (await call(ctx, 0, 3, body)) as Reader;
    r.int32();
    r.string();
    r.int32();
    expect([r.int32(), r.int16()]).toEqual([0, ErrorCode.INVALID_REQUIRED_ACKS]);
  });

  it('Fetch v11 below the log start offset answers OFFSET_OUT_OF_RANGE without waiting', async () => {
    const ctx = context();
    ctx.topics.create('t', 1, new Map());
    const body = new Writer()
      .int32(-1)
      .int32(60_000)
      .int32(1)
      .int32(1 << 20)
      .int8(0)
      .int32(0)
      .int32(-1)
      .array(['t'], (w, name) =>
        w.string(name).array([0], (w, p) =>
          w
            .int32(p)
            .int32(-1)
            .int64(5)
            .int64(-1)
            .int32(1 << 20),
        ),
      )
      .array([], () => undefined)
      .string('')
      .toBuffer();
    const r = (await call(ctx, 1, 11, body)) as Reader;
    expect([r.int32(), r.int16(), r.int32()]).toEqual([0, 0, 0]);
    r.int32();
    r.string();
    r.int32();
    expect([r.int32(), r.int16(), r.int64()]).toEqual([0, ErrorCode.OFFSET_OUT_OF_RANGE, 0]);
  });
});
