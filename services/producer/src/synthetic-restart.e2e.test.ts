/**
 * The producer as its own process (as `pnpm start` runs it), live synthetic, against the embedded
 * broker: stopped and started again, each symbol's walk must go on from its last published price.
 * It used to start every run at the seed price (BTC-USD 37000), so charts jumped at a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type { MarketSymbol, Tick } from '@candlestream/core';
import { decodeTick, encodeTick, parseSymbol } from '@candlestream/core';
import type { KafkaClient } from '@candlestream/kafka';
import {
  BatchConsumer,
  createKafka,
  ensureTopics,
  KafkaPublisher,
  TOPICS,
} from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess } from '@candlestream/testkit';
import { spawnService, uniqueName, waitUntil } from '@candlestream/testkit';
import { afterEach, describe, expect, it } from 'vitest';

const PRODUCER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const BTC = parseSymbol('BTC-USD');
const ETH = parseSymbol('ETH-USD');
/** Far from the seed prices (37000, 2000): a walk restarted there cannot pass for a continuation. */
const PUBLISHED: ReadonlyMap<MarketSymbol, number> = new Map([
  [BTC, 50_000],
  [ETH, 3_000],
]);
/** A few seconds of a 60%-volatility walk move well under this. */
const MAX_RELATIVE_STEP = 0.01;
const TRADES_PER_SYMBOL = 20;
const RESUME_LINE = 'synthetic prices resume from the newest published trades';

interface Seen {
  partition: number;
  offset: bigint;
  tick: Tick;
}

let broker: RunningBroker | undefined;
let dataDir: string | undefined;
let collector: BatchConsumer | undefined;
const processes: ServiceProcess[] = [];

afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
  await collector?.stop();
  await broker?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function startProducer(): ServiceProcess {
  const p = spawnService(PRODUCER_MAIN, {
    KAFKA_BROKERS: broker!.brokers,
    SYMBOLS: [...PUBLISHED.keys()].join(','),
    PRODUCER_SOURCE: 'synthetic',
    SYNTHETIC_RATE: '40',
    SYNTHETIC_SEED: '11',
    HEALTH_PORT: '0',
    LOG_LEVEL: 'info',
  });
  processes.push(p);
  return p;
}

/** Each partition's end offset now: records at or past it come later. */
async function ends(kafka: KafkaClient): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(TOPICS.ticks.name);
    return new Map(offsets.map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
}

const isBefore = (s: Seen, end: Map<number, bigint>): boolean =>
  s.offset < (end.get(s.partition) ?? 0n);

function firstAndLast(seen: readonly Seen[], symbol: MarketSymbol): { first: Tick; last: Tick } {
  const ticks = seen.filter((s) => s.tick.symbol === symbol).map((s) => s.tick);
  return { first: ticks[0]!, last: ticks.at(-1)! };
}

function relativeStep(from: number, to: number): number {
  return Math.abs(to - from) / from;
}

describe('live synthetic producer across restarts', () => {
  it('regression: a restarted live synthetic producer continues each symbol from its last published price instead of jumping back to the seed price', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cs-synthetic-restart-'));
    broker = await startBroker({ port: 0, dataDir });
    const kafka = createKafka({
      brokers: [broker.brokers],
      clientId: 'test',
      logger: silentLogger(),
    });
    await ensureTopics(kafka, [TOPICS.ticks]);

    // What an earlier run left on the topic, far from the seed prices.
    const publisher = new KafkaPublisher(kafka);
    await publisher.connect();
    const ts = Date.now() - 1_000;
    await publisher.send(
      TOPICS.ticks.name,
      [...PUBLISHED].map(([symbol, price], i) => ({
        key: symbol,
        value: encodeTick({
          v: 1,
          symbol,
          ts,
          price,
          size: 0.5,
          side: 'buy',
          id: `earlier-${i}`,
          source: 'synthetic',
        }),
      })),
    );
    await publisher.disconnect();

    const seen: Seen[] = [];
    collector = new BatchConsumer(kafka, {
      groupId: uniqueName('collector'),
      topics: [TOPICS.ticks.name],
    });
    await collector.start((batch) => {
      for (const m of batch.messages) {
        const decoded = decodeTick(m.value ?? '');
        if (decoded.ok) {
          seen.push({ partition: batch.partition, offset: BigInt(m.offset), tick: decoded.value });
        }
      }
      return Promise.resolve();
    });
    const countAfter = (end: Map<number, bigint>, symbol: MarketSymbol): number =>
      seen.filter((s) => s.tick.symbol === symbol && !isBefore(s, end)).length;
    /** Runs the producer until every symbol has trades and stops it; its offsets and log lines. */
    const runOnce = async (): Promise<{
      from: Map<number, bigint>;
      to: Map<number, bigint>;
      lines: Record<string, unknown>[];
    }> => {
      const from = await ends(kafka);
      const producer = startProducer();
      await waitUntil(
        `${TRADES_PER_SYMBOL} trades of each symbol`,
        () => [...PUBLISHED.keys()].every((s) => countAfter(from, s) >= TRADES_PER_SYMBOL),
        60_000,
      );
      expect(await producer.kill('SIGTERM')).toBe(0);
      const to = await ends(kafka);
      await waitUntil(
        'every trade of the run collected',
        () =>
          [...to].every(
            ([p, end]) =>
              end === 0n || seen.some((s) => s.partition === p && s.offset === end - 1n),
          ),
        30_000,
      );
      return { from, to, lines: producer.lines };
    };
    const inRange = (from: Map<number, bigint>, to: Map<number, bigint>): Seen[] =>
      seen.filter((s) => !isBefore(s, from) && isBefore(s, to));

    const first = await runOnce();
    const firstRun = inRange(first.from, first.to);
    const second = await runOnce();
    const secondRun = inRange(second.from, second.to);

    for (const [symbol, published] of PUBLISHED) {
      // The first run goes on from what was on the topic before it...
      expect(relativeStep(published, firstAndLast(firstRun, symbol).first.price)).toBeLessThan(
        MAX_RELATIVE_STEP,
      );
      // ...and the second from where the first stopped.
      const lastBefore = firstAndLast(firstRun, symbol).last.price;
      const firstAfter = firstAndLast(secondRun, symbol).first.price;
      expect(
        relativeStep(lastBefore, firstAfter),
        `${symbol} ${lastBefore} -> ${firstAfter}`,
      ).toBeLessThan(MAX_RELATIVE_STEP);
    }
    // One line per start says where the walks resumed from.
    for (const run of [first, second]) {
      const resumed = run.lines.filter((l) => l.msg === RESUME_LINE);
      expect(resumed).toHaveLength(1);
      expect(Object.keys(resumed[0]!.prices as object).sort()).toEqual(
        [...PUBLISHED.keys()].sort(),
      );
    }
  });
});
