/**
 * The producer as its own process (as `pnpm start` runs it), live synthetic, against the embedded
 * broker: stopped and started again, it must continue the same price path. It used to start every
 * run at the seed price (BTC-USD 37000), so charts jumped at a restart; now the path is a function
 * of (seed, symbol, time), so a restart goes on where the path is, and a backfill of the gap gives
 * the trades the stopped producer would have published.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import type { MarketSymbol, Tick } from '@candlestream/core';
import { decodeTick, parseSymbol } from '@candlestream/core';
import type { KafkaClient } from '@candlestream/kafka';
import { BatchConsumer, createKafka, ensureTopics, TOPICS } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess } from '@candlestream/testkit';
import { spawnService, uniqueName, waitUntil } from '@candlestream/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createSyntheticModel } from './sources/synthetic.js';

const PRODUCER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const BTC = parseSymbol('BTC-USD');
const ETH = parseSymbol('ETH-USD');
const SYMBOLS: readonly MarketSymbol[] = [BTC, ETH];
const RATE = 40;
const SEED = 11;
/** A few seconds of a 60%-volatility path move well under this. */
const MAX_RELATIVE_STEP = 0.01;
const TRADES_PER_SYMBOL = 20;

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
    SYMBOLS: SYMBOLS.join(','),
    PRODUCER_SOURCE: 'synthetic',
    SYNTHETIC_RATE: String(RATE),
    SYNTHETIC_SEED: String(SEED),
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
  it('regression: a restarted live synthetic producer continues the same price path instead of jumping back to the seed price', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cs-synthetic-restart-'));
    broker = await startBroker({ port: 0, dataDir });
    const kafka = createKafka({
      brokers: [broker.brokers],
      clientId: 'test',
      logger: silentLogger(),
    });
    await ensureTopics(kafka, [TOPICS.ticks]);

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
        () => SYMBOLS.every((s) => countAfter(from, s) >= TRADES_PER_SYMBOL),
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

    const model = createSyntheticModel({ symbols: SYMBOLS, seed: SEED, tradesPerSecond: RATE });
    for (const symbol of SYMBOLS) {
      // The second run goes on near where the first stopped (the path moved a little meanwhile)...
      const lastBefore = firstAndLast(firstRun, symbol).last;
      const firstAfter = firstAndLast(secondRun, symbol).first;
      expect(
        relativeStep(lastBefore.price, firstAfter.price),
        `${symbol} ${lastBefore.price} -> ${firstAfter.price}`,
      ).toBeLessThan(MAX_RELATIVE_STEP);
      // ...because both runs publish exactly the path's trades, whatever time each started at.
      const published = [...firstRun, ...secondRun]
        .map((s) => s.tick)
        .filter((t) => t.symbol === symbol);
      const from = Math.min(...published.map((t) => t.ts));
      const to = Math.max(...published.map((t) => t.ts)) + 1;
      const path = new Map([...model.trades(symbol, from, to)].map((t) => [t.id, t]));
      expect(published.filter((t) => !isDeepStrictEqual(path.get(t.id), t))).toEqual([]);
      expect(firstAfter).toEqual(path.get(firstAfter.id));
    }
  });
});
