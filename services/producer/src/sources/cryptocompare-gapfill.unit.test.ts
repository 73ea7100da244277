import type { EpochMs, MarketSymbol, Tick } from '@candlestream/core';
import { AppError } from '@candlestream/core';
import { silentLogger } from '@candlestream/logger';
import { describe, expect, it } from 'vitest';
import type { GapFillCounters, GapFillerOptions } from './cryptocompare-gapfill.js';
import { GapFiller } from './cryptocompare-gapfill.js';
import { TradeQueue } from './cryptocompare-queue.js';
import type { CandleRange, CcMinuteCandle } from './cryptocompare-rest.js';
import { candleToTrades } from './cryptocompare-rest.js';

const BTC = 'BTC-USD' as MarketSymbol;
const ETH = 'ETH-USD' as MarketSymbol;
const BASE_MS = Date.UTC(2024, 0, 1, 12, 0);
const MINUTE_MS = 60_000;

function tick(symbol: MarketSymbol, id: string, ts: EpochMs): Tick {
  return { v: 1, symbol, ts, price: 100, size: 1, side: 'buy', id, source: 'cryptocompare' };
}

function candle(k: number): CcMinuteCandle {
  return {
    time: (BASE_MS + k * MINUTE_MS) / 1000,
    open: 100,
    high: 102,
    low: 99,
    close: 101,
    volumefrom: 2,
    volumeto: 200,
  };
}

function drain(queue: TradeQueue): Tick[] {
  const out: Tick[] = [];
  for (let t = queue.shift(); t; t = queue.shift()) out.push(t);
  return out;
}

/** A GapFiller whose REST calls the test answers by hand. */
function setup(overrides: Partial<GapFillerOptions> = {}) {
  const calls: { symbol: MarketSymbol; fromMs: EpochMs; toMs: EpochMs }[] = [];
  const answers: ((candles: CcMinuteCandle[] | CandleRange | Error) => void)[] = [];
  const counters: GapFillCounters = {
    duplicates: 0,
    dropped: 0,
    gapFills: 0,
    gapFillFailures: 0,
    backfilledTrades: 0,
  };
  const queue = new TradeQueue(1_000, silentLogger(), (n) => (counters.dropped += n));
  const filler = new GapFiller({
    symbols: [BTC, ETH],
    resumeFrom: undefined,
    exchange: 'Coinbase',
    recentIdsPerSymbol: 100,
    maxHeldTrades: 100,
    maxGapFillMs: 7 * 24 * 60 * MINUTE_MS,
    queue,
    counters,
    logger: silentLogger(),
    fetchCandles: (symbol, fromMs, toMs) => {
      calls.push({ symbol, fromMs, toMs });
      return new Promise((resolve, reject) =>
        answers.push((a) =>
          a instanceof Error
            ? reject(a)
            : resolve(Array.isArray(a) ? { candles: a, unavailable: [] } : a),
        ),
      );
    },
    onGapStart: () => undefined,
    onFillEnd: () => undefined,
    stopping: () => false,
    ...overrides,
  });
  return { filler, queue, counters, calls, answers };
}

describe('GapFiller', () => {
  it('passes new trades straight through and drops repeats', () => {
    const { filler, queue, counters, calls } = setup();
    filler.accept(tick(BTC, 'a', BASE_MS));
    filler.accept(tick(BTC, 'a', BASE_MS));
    filler.accept(tick(ETH, 'a', BASE_MS)); // same id, other symbol: a different trade
    expect(drain(queue).map((t) => `${t.symbol}/${t.id}`)).toEqual(['BTC-USD/a', 'ETH-USD/a']);
    expect(counters.duplicates).toBe(1);
    expect(calls).toEqual([]);
  });

  it('holds one symbol behind its gap while the other streams, then releases in order', async () => {
    const { filler, queue, calls, answers, counters } = setup();
    filler.accept(tick(BTC, 'b1', BASE_MS + 1_000));
    filler.accept(tick(ETH, 'e1', BASE_MS + 2_000));
    drain(queue);
    filler.disconnected();

    filler.accept(tick(BTC, 'b2', BASE_MS + 3 * MINUTE_MS + 1));
    filler.accept(tick(ETH, 'e2', BASE_MS + 10_000)); // same minute: no gap
    filler.accept(tick(BTC, 'b3', BASE_MS + 3 * MINUTE_MS + 2));
    expect(calls).toEqual([
      { symbol: BTC, fromMs: BASE_MS + MINUTE_MS, toMs: BASE_MS + 3 * MINUTE_MS },
    ]);
    expect(filler.filling).toBe(true);
    expect(drain(queue).map((t) => t.id)).toEqual(['e2']);

    answers[0]!([candle(0), candle(1), candle(2), candle(3)]);
    await filler.settled();
    const backfill = [candle(1), candle(2)].flatMap((c) => candleToTrades(BTC, c, 'Coinbase'));
    expect(drain(queue)).toEqual([
      ...backfill,
      tick(BTC, 'b2', BASE_MS + 3 * MINUTE_MS + 1),
      tick(BTC, 'b3', BASE_MS + 3 * MINUTE_MS + 2),
    ]);
    expect(counters).toMatchObject({ gapFills: 1, backfilledTrades: backfill.length });
    expect(filler.filling).toBe(false);
  });

  it('releases the held trades when the fill fails', async () => {
    const { filler, queue, calls, answers, counters } = setup({
      resumeFrom: new Map([[BTC, BASE_MS]]),
    });
    filler.accept(tick(BTC, 'b1', BASE_MS + 5 * MINUTE_MS));
    expect(calls).toHaveLength(1);
    answers[0]!(new AppError('UNAVAILABLE', 'down'));
    await filler.settled();
    expect(drain(queue).map((t) => t.id)).toEqual(['b1']);
    expect(counters.gapFillFailures).toBe(1);
  });

  it('keeps the minutes fetched when the rest of the gap could not be had', async () => {
    const { filler, queue, answers, counters } = setup({
      resumeFrom: new Map([[BTC, BASE_MS]]),
    });
    filler.accept(tick(BTC, 'b1', BASE_MS + 5 * MINUTE_MS));
    const error = new AppError('NOT_FOUND', 'beyond the history kept', { retriable: false });
    answers[0]!({
      candles: [candle(3), candle(4)],
      unavailable: [{ fromMs: BASE_MS + MINUTE_MS, toMs: BASE_MS + 3 * MINUTE_MS, error }],
    });
    await filler.settled();
    const backfill = [candle(3), candle(4)].flatMap((c) => candleToTrades(BTC, c, 'Coinbase'));
    expect(drain(queue)).toEqual([...backfill, tick(BTC, 'b1', BASE_MS + 5 * MINUTE_MS)]);
    expect(counters).toMatchObject({ gapFillFailures: 1, backfilledTrades: backfill.length });
  });

  it('bounds the trades held behind a gap, dropping the oldest', async () => {
    const { filler, queue, answers, counters } = setup({
      resumeFrom: new Map([[BTC, BASE_MS]]),
      maxHeldTrades: 3,
    });
    for (let i = 0; i < 5; i++) filler.accept(tick(BTC, `b${i}`, BASE_MS + 2 * MINUTE_MS + i));
    answers[0]!([]);
    await filler.settled();
    expect(drain(queue).map((t) => t.id)).toEqual(['b2', 'b3', 'b4']);
    expect(counters.dropped).toBe(2);
  });

  it('fills only the newest maxGapFillMs of a long gap', () => {
    const { filler, calls } = setup({
      resumeFrom: new Map([[BTC, BASE_MS]]),
      maxGapFillMs: 10 * MINUTE_MS,
    });
    filler.accept(tick(BTC, 'b1', BASE_MS + 60 * MINUTE_MS));
    expect(calls).toEqual([
      { symbol: BTC, fromMs: BASE_MS + 50 * MINUTE_MS, toMs: BASE_MS + 60 * MINUTE_MS },
    ]);
  });
});

describe('TradeQueue', () => {
  it('drops the oldest live trade past capacity, never a backfill trade', () => {
    let dropped = 0;
    const queue = new TradeQueue(2, silentLogger(), (n) => (dropped += n));
    queue.push({ ...tick(BTC, 'h1', BASE_MS), source: 'backfill' }, 'backfill');
    queue.push(tick(BTC, 'l1', BASE_MS + 1), 'live');
    queue.push(tick(BTC, 'l2', BASE_MS + 2), 'live');
    queue.push(tick(BTC, 'l3', BASE_MS + 3), 'live');
    expect(drain(queue).map((t) => t.id)).toEqual(['h1', 'l2', 'l3']);
    expect(dropped).toBe(1);
  });

  it('stays in order across compactions', () => {
    const queue = new TradeQueue(10_000, silentLogger(), () => undefined);
    const out: string[] = [];
    let next = 0;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 3_000; i++, next++)
        queue.push(tick(BTC, `t${next}`, BASE_MS + next), 'live');
      for (let i = 0; i < 2_500; i++) out.push(queue.shift()!.id);
    }
    out.push(...drain(queue).map((t) => t.id));
    expect(out).toEqual(Array.from({ length: next }, (_, i) => `t${i}`));
    expect(queue.length).toBe(0);
  });
});
