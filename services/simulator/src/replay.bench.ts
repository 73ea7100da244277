/**
 * Replay speed and timekeeping, beside a baseline measured in the same run (embedded broker,
 * real PostgreSQL):
 * - unpaced (speed max): stored trades read page by page and published, messages/s, beside a
 *   bare KafkaPublisher sending the same messages, already encoded, in batches of the same size
 *   (the fastest honest way to put them on the broker); the engine from memory, without the
 *   database, shows what the reads cost;
 * - lag behind schedule (p50, p99, max) at 1x, 60x and 1000x, each about ten seconds of wall time.
 * Figures are printed as a table at the end; vitest's own line is one run each.
 */
import { encodeTick, MINUTE_MS, SECOND_MS, systemClock } from '@candlestream/core';
import type { Tick } from '@candlestream/core';
import { KafkaPublisher, ensureTopics, replayTopic } from '@candlestream/kafka';
import { silentLogger } from '@candlestream/logger';
import { needServices } from '@candlestream/testkit';
import { afterAll, bench, describe } from 'vitest';
import { storedHistory } from './history/index.js';
import { MAX_BATCH_TRADES, ReplayEngine } from './replay/engine.js';
import { kafkaSink } from './replay/kafka-sink.js';
import type { HistorySource, ReplaySpeed } from './replay/types.js';
import type { Infra } from './testing.js';
import { BTC, ETH, startInfra } from './testing.js';

const services = needServices(['postgres']);
const ONCE = { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 };
const UNPACED_TRADES = 200_000;
const T0 = Date.UTC(2026, 9, 1);
const INSERT_BATCH = 5_000;

const rows: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  process.stdout.write(`\nreplay figures:\n${rows.join('\n')}\n`);
});

/** `count` trades alternating two symbols, `gapMs` apart. */
function trades(count: number, from: number, gapMs: number, prefix: string): Tick[] {
  return Array.from({ length: count }, (_, i) => ({
    v: 1,
    symbol: i % 2 === 0 ? BTC : ETH,
    ts: from + Math.floor(i * gapMs),
    price: 30_000 + (i % 113),
    size: 0.25 + (i % 7) / 8,
    side: i % 3 === 0 ? 'sell' : 'buy',
    id: `${prefix}-${String(i).padStart(7, '0')}`,
    source: 'synthetic',
  }));
}

function memorySource(all: readonly Tick[]): HistorySource {
  return {
    kind: 'memory',
    async *pages(range, from) {
      const start = all.findIndex((t) => t.ts >= from);
      for (let i = Math.max(0, start); i < all.length && all[i]!.ts < range.to; i += 5_000) {
        await Promise.resolve();
        yield all.slice(i, i + 5_000).filter((t) => t.ts < range.to);
      }
    },
  };
}

describe.skipIf(services.skip)('replay', () => {
  let infra: Infra;
  let publisher: KafkaPublisher;
  const unpaced = trades(UNPACED_TRADES, T0, 10, 'u'); // 2,000 s of history
  // Paced runs: ~10 s of wall time each at its speed.
  const paced: { speed: number; trades: Tick[] }[] = [
    { speed: 1, trades: trades(2_000, T0 + 10 * 60 * MINUTE_MS, 5, 'x1') },
    { speed: 60, trades: trades(6_000, T0 + 20 * 60 * MINUTE_MS, 100, 'x60') },
    { speed: 1_000, trades: trades(100_000, T0 + 30 * 60 * MINUTE_MS, 100, 'x1000') },
  ];

  const setup = async (): Promise<void> => {
    if (infra) return;
    infra = await startInfra(services.get('postgres').url, 'replay_bench', { brokerProcess: true });
    cleanups.push(() => infra.close());
    for (const set of [unpaced, ...paced.map((p) => p.trades)]) {
      for (let i = 0; i < set.length; i += INSERT_BATCH) {
        await infra.repository.insertTrades(set.slice(i, i + INSERT_BATCH));
      }
    }
    publisher = new KafkaPublisher(infra.kafka);
    await publisher.connect();
    cleanups.push(() => publisher.disconnect());
  };

  const replay = async (
    source: HistorySource,
    list: readonly Tick[],
    speed: ReplaySpeed,
    topic: string,
  ) => {
    await ensureTopics(infra.kafka, [replayTopic(topic)]);
    const engine = new ReplayEngine({
      source,
      sink: kafkaSink(publisher, topic),
      range: { symbols: [BTC, ETH], from: list[0]!.ts, to: list.at(-1)!.ts + 1 },
      clock: systemClock,
      speed,
    });
    const began = performance.now();
    const summary = await engine.run();
    return { summary, ms: performance.now() - began };
  };

  const rate = (label: string, messages: number, ms: number): void => {
    rows.push(
      `  ${label.padEnd(62)} ${String(Math.round(messages / (ms / SECOND_MS))).padStart(9)} messages/s   ${(ms / SECOND_MS).toFixed(2)} s for ${String(messages)}`,
    );
  };

  bench(
    'unpaced: stored history into the broker, beside a bare publisher',
    async () => {
      await setup();
      const stored = await replay(
        storedHistory({ repository: infra.repository, logger: silentLogger() }),
        unpaced,
        'max',
        'replay.bench-stored',
      );
      rate(
        'replay --speed max from PostgreSQL (reads + publish)',
        stored.summary.messages,
        stored.ms,
      );
      const memory = await replay(memorySource(unpaced), unpaced, 'max', 'replay.bench-memory');
      rate('replay --speed max from memory (engine + publish)', memory.summary.messages, memory.ms);
      // Baseline: the same messages, encoded up front, in the engine's batch size.
      await ensureTopics(infra.kafka, [replayTopic('replay.bench-bare')]);
      const messages = unpaced.map((t) => ({
        key: t.symbol,
        value: encodeTick({ ...t, source: 'replay' }),
      }));
      const began = performance.now();
      for (let i = 0; i < messages.length; i += MAX_BATCH_TRADES) {
        await publisher.send('replay.bench-bare', messages.slice(i, i + MAX_BATCH_TRADES));
      }
      const bare = performance.now() - began;
      rate('baseline: bare KafkaPublisher, same messages and batches', messages.length, bare);
      rows.push(
        `  ratio stored/bare ${(stored.ms > 0 ? bare / stored.ms : 0).toFixed(2)}, memory/bare ${(memory.ms > 0 ? bare / memory.ms : 0).toFixed(2)} (aim: >= 0.8)`,
      );
    },
    ONCE,
  );

  bench(
    'lag behind schedule at 1x, 60x and 1000x',
    async () => {
      await setup();
      for (const { speed, trades: list } of paced) {
        const { summary, ms } = await replay(
          storedHistory({ repository: infra.repository, logger: silentLogger() }),
          list,
          speed,
          `replay.bench-x${String(speed)}`,
        );
        const { p50, p99, max } = summary.lag;
        rows.push(
          `  lag at ${`${String(speed)}x`.padEnd(6)} p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms   (${String(summary.messages)} messages, ${(ms / SECOND_MS).toFixed(1)} s, effective ${summary.effectiveSpeed.toFixed(1)}x)`,
        );
      }
    },
    ONCE,
  );
});
