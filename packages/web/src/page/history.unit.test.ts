import { describe, expect, it } from 'vitest';
import type { HistoryState } from './history.js';
import {
  forget,
  historyLine,
  IDLE,
  isLoading,
  keepVisible,
  onJob,
  onStreamHistory,
  parseJob,
  parseOhlcv,
  percent,
  track,
} from './history.js';

const NOW = Date.UTC(2026, 4, 12, 14, 35);
const MINUTE_MS = 60_000;

/** GET /backfills/:id as the datastore answers it (services/datastore backfills.ts jobView). */
function job(status: string, extra: Record<string, unknown> = {}) {
  return parseJob({
    id: 'job-1',
    symbol: 'BTC-USD',
    from: '2026-05-11T14:00:00.000Z',
    to: '2026-05-12T14:00:00.000Z',
    status,
    progress: { done: 0, total: 0 },
    error: null,
    unavailable: [],
    requestedBy: 'chart',
    ...extra,
  })!;
}

/** The state after an /ohlcv answer that started job-1. */
const loading = (): HistoryState => track(IDLE, { id: 'job-1', status: 'queued' }, NOW);

describe('an /ohlcv answer', () => {
  it('is read with its bars in epoch ms and the backfill it started', () => {
    const answer = parseOhlcv({
      symbol: 'BTC-USD',
      interval: '1m',
      bars: [
        { time: '2026-05-12T14:00:00.000Z', open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 },
      ],
      partial: true,
      backfill: { id: 'job-1', status: 'queued' },
    });
    expect(answer.bars).toEqual([
      { time: Date.UTC(2026, 4, 12, 14), open: 1, high: 2, low: 0.5, close: 1.5, volume: 3 },
    ]);
    expect(answer.backfill).toEqual({ id: 'job-1', status: 'queued' });
  });

  it('without a backfill has none, and a malformed bar is refused rather than drawn', () => {
    expect(parseOhlcv({ bars: [] }).backfill).toBeUndefined();
    expect(() => parseOhlcv({ bars: [{ time: 'x', open: 1 }] })).toThrow(/without numbers|time/);
    expect(() => parseOhlcv({ error: 'unknown symbol' })).toThrow(/no bars/);
  });
});

describe('waiting for a backfill', () => {
  it('a running job shows "Loading history…", then its progress from the poll', () => {
    let state = loading();
    expect(isLoading(state)).toBe(true);
    expect(historyLine(state, NOW)).toBe('Loading history…');
    const polled = onJob(state, job('storing', { progress: { done: 576, total: 1_440 } }));
    state = polled.state;
    expect(polled.reload).toBe(false);
    expect(percent(state)).toBe(40);
    expect(historyLine(state, NOW)).toBe('Loading history… 40%');
  });

  it('done (by the poll): the range is read again and the line goes', () => {
    const { state, reload } = onJob(loading(), job('done'));
    expect(reload).toBe(true);
    expect(isLoading(state)).toBe(false);
    expect(historyLine(state, NOW)).toBeUndefined();
  });

  it('done (by /stream): stops waiting and asks the job once for what the source lacked', () => {
    const { state, askJob } = onStreamHistory(loading(), { id: 'job-1', status: 'done' });
    expect(askJob).toBe(true);
    expect(historyLine(state, NOW)).toBeUndefined();
    // Another client's job of the same symbol: nothing to ask (the datafeed's reset reloads).
    expect(onStreamHistory(loading(), { id: 'other', status: 'done' })).toEqual({
      state: loading(),
      askJob: false,
    });
  });

  it('failed: said plainly with the job error, and what it stored before failing is read', () => {
    const { state, reload } = onJob(
      loading(),
      job('failed', { error: 'the source did not answer (HTTP 503).' }),
    );
    expect(reload).toBe(true);
    expect(historyLine(state, NOW)).toBe(
      'Could not load older history: the source did not answer (HTTP 503). The chart shows what is stored.',
    );
    const streamed = onStreamHistory(loading(), { id: 'job-1', status: 'failed' }).state;
    expect(historyLine(streamed, NOW)).toBe(
      'Could not load older history. The chart shows what is stored.',
    );
    expect(historyLine(track(IDLE, { id: 'job-2', status: 'failed' }, NOW), NOW)).toMatch(
      /^Could not load older history\./,
    );
  });

  it('what the source could not provide is said briefly, in UTC', () => {
    const { state } = onJob(
      loading(),
      job('done', {
        unavailable: [
          { from: '2026-05-04T00:00:00.000Z', to: '2026-05-05T12:00:00.000Z', reason: 'limit' },
        ],
      }),
    );
    expect(historyLine(state, NOW)).toBe(
      'The source has no history for 4 May 00:00 UTC – 5 May 12:00 UTC.',
    );
  });

  it('a job nobody starts says so after a while, instead of loading forever in silence', () => {
    expect(historyLine(loading(), NOW + 29_000)).toBe('Loading history…');
    expect(historyLine(loading(), NOW + 30_000)).toMatch(/still queued: nothing has started/);
    const started = onJob(loading(), job('fetching')).state;
    expect(historyLine(started, NOW + 60_000)).toBe('Loading history…');
  });

  it('two jobs (the first load and a scroll back): loading until both end, progress summed', () => {
    let state = track(loading(), { id: 'job-2', status: 'fetching' }, NOW);
    state = onJob(state, job('storing', { progress: { done: 10, total: 10 } })).state;
    state = onJob(state, {
      ...job('storing'),
      id: 'job-2',
      progress: { done: 0, total: 30 },
    }).state;
    expect(percent(state)).toBe(25);
    state = onJob(state, job('done')).state;
    expect(isLoading(state)).toBe(true);
    state = forget(state, 'job-2');
    expect(isLoading(state)).toBe(false);
  });

  it('an answer with nothing missing, or a job already done, changes nothing', () => {
    expect(track(IDLE, undefined, NOW)).toBe(IDLE);
    expect(track(IDLE, { id: 'job-1', status: 'done' }, NOW)).toBe(IDLE);
    expect(onJob(IDLE, job('done'))).toEqual({ state: IDLE, reload: false });
  });

  it('a job body that is not one is refused', () => {
    expect(parseJob({ error: 'not found' })).toBeUndefined();
    expect(
      parseJob({ id: 'x', status: 'done', unavailable: [{ from: 'x' }] })?.unavailable,
    ).toEqual([]);
  });
});

describe('keeping the visible range when the loaded bars are replaced', () => {
  const minutes = (from: number, to: number): number[] =>
    Array.from({ length: to - from }, (_, i) => (from + i) * MINUTE_MS);

  it('older bars added on the left: the same bars stay in view', () => {
    const before = minutes(100, 200);
    const after = minutes(0, 200);
    expect(keepVisible({ from: 20.5, to: 80.5 }, before, after)).toEqual({
      from: 120.5,
      to: 180.5,
    });
  });

  it('a hole filled inside the range: the newest visible bar stays where it was', () => {
    const before = [...minutes(0, 10), ...minutes(50, 100)];
    const after = minutes(0, 100);
    const range = keepVisible({ from: 5, to: 40 }, before, after);
    expect(after[Math.floor(range.to)]).toBe(before[40]);
  });

  it('the room right of the newest bar is kept', () => {
    const before = minutes(100, 110);
    const after = minutes(0, 110);
    expect(keepVisible({ from: -50, to: 14 }, before, after)).toEqual({ from: 50, to: 114 });
  });
});

describe('the job asked once after /stream ended the wait', () => {
  it('adds what the source could not provide, and nothing else', () => {
    const after = onStreamHistory(loading(), { id: 'job-1', status: 'done' }).state;
    const unavailable = [{ from: '2026-05-04T00:00:00Z', to: '2026-05-05T00:00:00Z', reason: 'x' }];
    const { state, reload } = onJob(after, job('done', { unavailable }));
    expect(reload).toBe(false);
    expect(historyLine(state, NOW)).toMatch(/^The source has no history for 4 May 00:00 UTC/);
    expect(onJob(after, job('done')).state).toBe(after);
  });

  it('says where only hourly bars are kept, and nothing on a chart of 1h or longer', () => {
    const after = onStreamHistory(loading(), { id: 'job-1', status: 'done' }).state;
    const unavailable = [
      { from: '2026-05-04T00:00:00Z', to: '2026-05-05T00:00:00Z', reason: 'x', stored: '1h' },
    ];
    const { state } = onJob(after, job('done', { unavailable }));
    expect(historyLine(state, NOW, 60_000)).toBe(
      'The source keeps only hourly bars for 4 May 00:00 UTC – 5 May 00:00 UTC: choose 1h or longer.',
    );
    expect(historyLine(state, NOW, 3_600_000)).toBeUndefined();
    expect(historyLine(state, NOW, 86_400_000)).toBeUndefined();
  });
});
