/**
 * The chart page: candles and volume from the Candlestream datafeed (the TradingView Datafeed
 * API over /udf and /stream), drawn with TradingView Lightweight Charts. If a licensed Charting
 * Library has been placed in charting_library/ (docs/CHART.md), it is used with the same datafeed.
 */
import type { Bar, LibrarySymbolInfo, ResolutionString } from '@candlestream/datafeed';
import { systemClock } from '@candlestream/core';
import { createDatafeed, streamUrl } from '@candlestream/datafeed';
import type {
  CandlestickData,
  HistogramData,
  IChartApi,
  ISeriesApi,
  LineData,
  MouseEventParams,
  Time,
  UTCTimestamp,
} from 'lightweight-charts';
import { CandlestickSeries, createChart, HistogramSeries, LineSeries } from 'lightweight-charts';
import { fewBarsRange } from './framing.js';
import type { OhlcvAnswer } from './history.js';
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
import type { StudyId, StudyPoint } from './indicators.js';
import { parseStudies, STUDIES, STUDY_IDS, Study } from './indicators.js';
import { cannotShow, fewCandles, price, tokenNeeded, volume as volumeText } from './messages.js';
import type { ReplayMode, ReplaySocket } from './replay.js';
import { mountReplay } from './replay.js';

/** Set by vite.config.ts: whether a licensed Charting Library was in charting_library/ at build. */
declare const __CHARTING_LIBRARY__: boolean;

/** Bars asked for at first and on every scroll to the left edge. */
const PAGE_BARS = 300;
/**
 * The first load reaches back at least this far (issue 15: a fresh start opens on a full chart,
 * at least a day of 1m history): a day of 1m is 1,440 bars; the datastore backfills what is missing.
 */
const FIRST_SPAN_MS = 86_400_000;
/** GET /backfills/:id while waiting: progress, and the fallback if the /stream message is missed. */
const BACKFILL_POLL_MS = 2_000;
/** A reload of the loaded range asks for at most this many bars (the datastore's MAX_BARS default). */
const MAX_RELOAD_BARS = 20_000;
/** The earliest time /ohlcv accepts (docs/API.md: the platform's trade times start 2009-01-03). */
const EARLIEST_MS = Date.UTC(2009, 0, 3);
const REQUEST_TIMEOUT_MS = 15_000;
/** Load older bars once fewer than this many are left of the visible range. */
const LOAD_MORE_WITHIN_BARS = 30;
const RESOLUTIONS: [ResolutionString, string][] = [
  ['1', '1m'],
  ['5', '5m'],
  ['15', '15m'],
  ['30', '30m'],
  ['60', '1h'],
  ['240', '4h'],
  ['1D', '1D'],
  ['1W', '1W'],
];
const UP = '#26a69a';
const DOWN = '#ef5350';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
/** Token storage key: a token typed into the page lasts for the tab, never in the URL or on disk. */
const TOKEN_KEY = 'candlestream.token';
const urlToken = params.get('token') ?? undefined;
const token = urlToken ?? sessionStorage.getItem(TOKEN_KEY) ?? undefined;
const RESOLUTION_MS: Record<string, number> = {
  '1': 60_000,
  '5': 300_000,
  '15': 900_000,
  '30': 1_800_000,
  '60': 3_600_000,
  '240': 14_400_000,
  '1D': 86_400_000,
  '1W': 604_800_000,
};

function setConnection(state: string): void {
  document.body.dataset['connection'] = state;
  $('connection').textContent = state;
}

const feed = createDatafeed({
  baseUrl: location.origin,
  ...(token ? { token } : {}),
  onConnectionState: setConnection,
  onHistory: (update) => {
    if (update.symbol !== view.symbol) return;
    const { state, askJob } = onStreamHistory(view.history, update.backfill);
    view.history = state;
    publishState();
    // The reload itself comes from the listener's onResetCacheNeeded (the datafeed calls it first).
    if (askJob) void pollJob(update.backfill.id, view.generation);
  },
});

const authHeaders = (): Record<string, string> =>
  token ? { Authorization: `Bearer ${token}` } : {};

/** GET a datastore path as JSON; a failure says what, in the server's words when it gave some. */
async function getJson(path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(path, {
    headers: authHeaders(),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok && response.status !== 404) {
    const said = (body as { error?: unknown } | undefined)?.error;
    throw new Error(typeof said === 'string' ? said : `HTTP ${String(response.status)}`);
  }
  return { status: response.status, body };
}

/**
 * Bars from /ohlcv rather than the datafeed's getBars (/udf/history): only /ohlcv names the
 * backfill a request for missing history started (docs/API.md), which the page waits for.
 * `endDate` exclusive (default the server's now); `limit` the newest bars before it, or of
 * [startDate, endDate).
 */
async function ohlcv(
  symbol: string,
  resolution: ResolutionString,
  range: { startDate?: number; endDate?: number; limit: number },
): Promise<OhlcvAnswer> {
  const query = new URLSearchParams({ symbol, interval: resolution, limit: String(range.limit) });
  // Epoch ms of exactly 13 digits (docs/API.md), as every time the page sends is.
  if (range.startDate !== undefined) query.set('startDate', String(Math.round(range.startDate)));
  if (range.endDate !== undefined) query.set('endDate', String(Math.round(range.endDate)));
  const { status, body } = await getJson(`/ohlcv?${query.toString()}`);
  if (status === 404) throw new Error('unknown_symbol');
  return parseOhlcv(body);
}

// The Datafeed API is callback-based; the page reads better with promises.
const resolve = (symbol: string): Promise<LibrarySymbolInfo> =>
  new Promise((ok, fail) =>
    feed.resolveSymbol(symbol, ok, (reason) => fail(new Error(String(reason)))),
  );

const seconds = (ms: number): UTCTimestamp => (ms / 1_000) as UTCTimestamp;
const line = (point: StudyPoint): LineData<UTCTimestamp> => ({
  time: seconds(point.time),
  value: point.value,
});

function candle(bar: Bar): CandlestickData<UTCTimestamp> {
  return {
    time: (bar.time / 1_000) as UTCTimestamp,
    open: bar.open,
    high: bar.high,
    low: bar.low,
    close: bar.close,
  };
}
function volume(bar: Bar): HistogramData<UTCTimestamp> {
  return {
    time: (bar.time / 1_000) as UTCTimestamp,
    value: bar.volume ?? 0,
    color: bar.close >= bar.open ? `${UP}80` : `${DOWN}80`,
  };
}

/**
 * What the page shows now. `generation` counts the charts shown (answers for an earlier one are
 * dropped); `request` counts selections asked for, so only the newest one may replace the chart.
 */
const view = {
  symbol: params.get('symbol') ?? '',
  resolution: (params.get('interval') ?? '1') as ResolutionString,
  info: undefined as LibrarySymbolInfo | undefined,
  bars: [] as Bar[],
  exhausted: false,
  loadingOlder: false,
  generation: 0,
  request: 0,
  listener: '',
  /** The symbols the platform has (from the symbol search), for the unknown-symbol hint. */
  known: [] as string[],
  studies: parseStudies(params.get('indicators')),
  /** The bar under the crosshair, by open time (ms); undefined = the newest bar. */
  hoverTime: undefined as number | undefined,
  /**
   * The oldest time the page has asked for (ms): the loaded range is [from, now). Older than the
   * first bar while a backfill of it runs, so a reload once it is done fetches the new bars.
   */
  from: Number.POSITIVE_INFINITY,
  /** The backfills the page waits for, and how the last ones ended (history.ts). */
  history: IDLE,
  /** The backfill a scroll back that found nothing older stored waits for ('' none). */
  olderJob: '',
  reloading: false,
  reloadAgain: false,
  /** Reloads of the loaded range done, for tests. */
  reloads: 0,
  /** A replay's start (epoch ms): history is shown up to it only, no live updates (replay.ts). */
  until: undefined as number | undefined,
};
let pollTimer: ReturnType<typeof setTimeout> | undefined;

/** The live indicator state and its line, one per indicator switched on. */
const active = new Map<StudyId, { study: Study; series: ISeriesApi<'Line'> }>();

function publishState(): void {
  // Read by the end-to-end test and handy when debugging; the chart itself is a canvas.
  const first = view.bars[0];
  const last = view.bars[view.bars.length - 1];
  Object.assign(document.body.dataset, {
    symbol: view.symbol,
    resolution: view.resolution,
    barCount: String(view.bars.length),
    firstTime: first ? String(first.time) : '',
    lastTime: last ? String(last.time) : '',
    lastClose: last ? String(last.close) : '',
    updates: String(Number(document.body.dataset['updates'] ?? '0')),
    indicators: view.studies.join(','),
    loadingHistory: String(isLoading(view.history)),
    historyJobs: Object.keys(view.history.waiting).join(','),
    historyProgress: String(percent(view.history) ?? ''),
    historyFailed: String(view.history.failed !== undefined),
    historyReloads: String(view.reloads),
  });
  for (const id of STUDY_IDS) {
    const study = active.get(id)?.study;
    const value = last ? study?.values.get(last.time) : undefined;
    document.body.dataset[`${id}Value`] = value === undefined ? '' : String(value);
  }
  renderLegend();
  renderFewBars();
  renderHistory();
}

/** The line above the chart while history loads, or how its loading ended (history.ts). */
function renderHistory(): void {
  const text = view.info ? historyLine(view.history, Date.now(), resolutionMs()) : undefined;
  const el = $('history');
  el.hidden = text === undefined;
  el.textContent = text ?? '';
  document.body.dataset['historyNote'] = text ?? '';
}

/** Follows the backfills the page waits for: GET /backfills/:id every BACKFILL_POLL_MS. */
function schedulePoll(): void {
  if (pollTimer !== undefined || !isLoading(view.history)) return;
  const generation = view.generation;
  pollTimer = setTimeout(() => {
    pollTimer = undefined;
    if (generation !== view.generation) return;
    void Promise.all(Object.keys(view.history.waiting).map((id) => pollJob(id, generation))).then(
      () => {
        publishState(); // the "still queued" wording depends on the time
        schedulePoll();
      },
    );
  }, BACKFILL_POLL_MS);
}

async function pollJob(id: string, generation: number): Promise<void> {
  let answer: { status: number; body: unknown };
  try {
    answer = await getJson(`/backfills/${encodeURIComponent(id)}`);
  } catch (err) {
    console.warn('asking for a backfill failed; asking again later', err);
    return;
  }
  if (generation !== view.generation) return;
  if (answer.status === 404) {
    // A datastore restarted before the coordinator recorded it: read again, which asks anew.
    view.history = forget(view.history, id);
    void reloadLoaded();
    return;
  }
  const job = parseJob(answer.body);
  if (!job) return;
  const { state, reload } = onJob(view.history, job);
  view.history = state;
  publishState();
  if (reload) void reloadLoaded();
}

/** An /ohlcv answer's backfill, if any: waited for (the line, the poll). */
function follow(answer: OhlcvAnswer): void {
  view.history = track(view.history, answer.backfill, Date.now());
  schedulePoll();
}

/**
 * Reads the loaded range again (a backfill stored history, or the stream was lost a while):
 * [view.from, now) of the shown chart, keeping the bars in view where they were on screen.
 */
async function reloadLoaded(): Promise<void> {
  if (!view.info) return;
  if (view.reloading) {
    view.reloadAgain = true;
    return;
  }
  view.reloading = true;
  const generation = view.generation;
  try {
    const width = resolutionMs();
    const oldest = Math.min(view.from, view.bars[0]?.time ?? Number.POSITIVE_INFINITY);
    const from = Number.isFinite(oldest)
      ? Math.max(EARLIEST_MS, oldest)
      : Date.now() - FIRST_SPAN_MS;
    const end = view.until ?? Date.now();
    const limit = Math.min(MAX_RELOAD_BARS, Math.ceil((end - from) / width) + 2);
    const answer = await ohlcv(view.symbol, view.resolution, {
      startDate: from,
      ...(view.until === undefined ? {} : { endDate: view.until }),
      limit,
    });
    if (generation !== view.generation) return;
    const newest = answer.bars[answer.bars.length - 1]?.time ?? Number.NEGATIVE_INFINITY;
    // Live (or replayed) bars that came in while the request ran stay.
    const next = [...answer.bars, ...view.bars.filter((b) => b.time > newest)];
    const range = chart.timeScale().getVisibleLogicalRange();
    const before = view.bars.map((b) => b.time);
    view.bars = next;
    view.exhausted = false;
    view.reloads += 1;
    follow(answer);
    draw();
    if (range && before.length > 0) {
      chart.timeScale().setVisibleLogicalRange(
        keepVisible(
          range,
          before,
          next.map((b) => b.time),
        ),
      );
    } else frame();
  } catch (err) {
    console.warn('reading the loaded range again failed', err);
  } finally {
    view.reloading = false;
    if (view.reloadAgain) {
      view.reloadAgain = false;
      void reloadLoaded();
    }
  }
}

/**
 * The note above the chart while its candles are too few to fill it (a fresh start: only what
 * came in live is stored): how many, since when, and that older history is not stored yet.
 */
function renderFewBars(): void {
  const loaded = view.info !== undefined;
  const few = loaded && fewBarsRange(view.bars.length, chart.timeScale().width()) !== undefined;
  const el = $('few-bars');
  el.hidden = !few;
  el.textContent = few
    ? fewCandles(view.bars.length, view.bars[0]?.time, resolutionMs(), Date.now())
    : '';
  document.body.dataset['fewBars'] = String(few);
}

/**
 * Shows the newest bars: too few to fill the chart, they are framed at a normal width with room
 * on their right (framing.ts); otherwise the chart scrolls to the newest at the zoom it has.
 */
function frame(): void {
  const range = fewBarsRange(view.bars.length, chart.timeScale().width());
  if (range && view.bars.length > 0) chart.timeScale().setVisibleLogicalRange(range);
  else chart.timeScale().scrollToRealTime();
}

/** The visible range, for tests: logical bar indexes (0 = oldest loaded) and px per bar. */
function publishRange(range: { from: number; to: number } | null): void {
  const width = chart.timeScale().width();
  const times = range ? chart.timeScale().getVisibleRange() : null;
  Object.assign(document.body.dataset, {
    // The visible bars' open times (ms): what a reload of the range must keep on screen.
    visibleFromTime: typeof times?.from === 'number' ? String(times.from * 1_000) : '',
    visibleToTime: typeof times?.to === 'number' ? String(times.to * 1_000) : '',
    visibleFrom: range ? range.from.toFixed(2) : '',
    visibleTo: range ? range.to.toFixed(2) : '',
    barSpacing: range && range.to > range.from ? (width / (range.to - range.from)).toFixed(2) : '',
  });
}

/** The bar the legend describes: the one under the crosshair, else the newest. */
function legendBar(): Bar | undefined {
  if (view.hoverTime !== undefined) {
    const hovered = barAt(view.hoverTime);
    if (hovered) return hovered;
  }
  return view.bars[view.bars.length - 1];
}

/** The loaded bar opening at `time` (ms): a binary search, the bars being in time order. */
function barAt(time: number): Bar | undefined {
  let lo = 0;
  let hi = view.bars.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const bar = view.bars[mid]!;
    if (bar.time === time) return bar;
    if (bar.time < time) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

function renderLegend(): void {
  const legend = $('legend');
  const bar = legendBar();
  document.body.dataset['legendTime'] = bar ? String(bar.time) : '';
  const title = document.createElement('div');
  title.className = 'title';
  title.textContent = `${view.symbol} · ${RESOLUTIONS.find(([r]) => r === view.resolution)?.[1] ?? view.resolution}`;
  if (!bar) {
    legend.replaceChildren(title);
    return;
  }
  const colour = bar.close >= bar.open ? 'up' : 'down';
  const field = (name: string, value: string, className = colour): HTMLSpanElement => {
    const span = document.createElement('span');
    span.className = 'field';
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = `${name} `;
    const text = document.createElement('span');
    text.className = className;
    text.textContent = value;
    span.append(label, text);
    return span;
  };
  const ohlc = document.createElement('div');
  ohlc.className = 'values';
  ohlc.append(
    field('O', price(bar.open)),
    field('H', price(bar.high)),
    field('L', price(bar.low)),
    field('C', price(bar.close)),
    field('V', volumeText(bar.volume ?? 0)),
  );
  const studies = document.createElement('div');
  studies.className = 'values';
  for (const [id, { study }] of active) {
    const value = study.values.get(bar.time);
    const item = field(STUDIES[id].label, value === undefined ? '–' : price(value), 'study');
    item.style.setProperty('--study', STUDIES[id].color);
    studies.append(item);
  }
  legend.replaceChildren(title, ohlc, ...(active.size > 0 ? [studies] : []));
}

function onCrosshairMove(param: MouseEventParams<Time>): void {
  // No time: the crosshair left the chart (or is past the newest bar); back to the newest.
  const time = typeof param.time === 'number' ? param.time * 1_000 : undefined;
  if (time === view.hoverTime) return;
  view.hoverTime = time;
  renderLegend();
}

/** Keeps the legend clear of the price axis: it may use the width left of the axis only. */
function fitLegend(): void {
  const axis = chart.priceScale('right').width();
  $('legend').style.right = `${axis + 8}px`;
}

function showMessage(text: string | undefined): void {
  const el = $('message');
  el.hidden = text === undefined;
  el.textContent = text ?? '';
}

/** A notice over a chart that stays usable (an unknown symbol, a failed load). */
function showNotice(text: string | undefined): void {
  const el = $('notice');
  el.hidden = text === undefined;
  el.textContent = text ?? '';
  document.body.dataset['notice'] = text ?? '';
}

let chart: IChartApi;
let candles: ISeriesApi<'Candlestick'>;
let volumes: ISeriesApi<'Histogram'>;

function setUpChart(): void {
  chart = createChart($('chart'), {
    autoSize: true,
    layout: { background: { color: '#131722' }, textColor: '#d1d4dc' },
    grid: { vertLines: { color: '#1e222d' }, horzLines: { color: '#1e222d' } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  candles = chart.addSeries(CandlestickSeries, {
    upColor: UP,
    downColor: DOWN,
    borderVisible: false,
    wickUpColor: UP,
    wickDownColor: DOWN,
  });
  // Volume on an overlay scale of its own at the bottom, with no value label: its label would sit
  // on the price axis over the prices (Lightweight Charts: an overlay scale has no axis).
  volumes = chart.addSeries(HistogramSeries, {
    priceScaleId: 'volume',
    priceFormat: { type: 'volume' },
    lastValueVisible: false,
    priceLineVisible: false,
  });
  volumes.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.1, bottom: 0.25 } });
  chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
    if (range && range.from < LOAD_MORE_WITHIN_BARS) void loadOlder();
    fitLegend();
    publishRange(range);
  });
  chart.subscribeCrosshairMove(onCrosshairMove);
  // Replay mode: a bar clicked while a start is being picked is the start (its open time).
  chart.subscribeClick((param) => {
    if (typeof param.time === 'number') replay?.pick(param.time * 1_000);
  });
  new ResizeObserver(fitLegend).observe($('chart'));
}

/** Switches an indicator on (its line drawn over the loaded bars) or off. */
function setStudy(id: StudyId, on: boolean): void {
  const current = active.get(id);
  if (current) {
    chart.removeSeries(current.series);
    active.delete(id);
  }
  if (on) {
    const spec = STUDIES[id];
    const oscillator = spec.pane === 'oscillator';
    // RSI gets its own pane below the candles: its 0-100 scale has nothing to do with prices.
    const series = chart.addSeries(
      LineSeries,
      {
        color: spec.color,
        lineWidth: 2,
        priceLineVisible: false,
        lastValueVisible: oscillator,
        crosshairMarkerVisible: false,
        title: oscillator ? spec.label : '',
      },
      oscillator ? 1 : 0,
    );
    if (oscillator) chart.panes()[1]?.setHeight(Math.round($('chart').clientHeight * 0.22));
    const [study, points] = Study.over(id, resolutionMs(), view.bars);
    series.setData(points.map(line));
    active.set(id, { study, series });
  }
  // An empty pane keeps its space; drop it with its last series.
  const panes = chart.panes();
  for (let i = panes.length - 1; i > 0; i--) {
    if (panes[i]!.getSeries().length === 0) chart.removePane(i);
  }
  view.studies = STUDY_IDS.filter((s) => active.has(s));
  for (const button of $('studies').querySelectorAll('button')) {
    button.setAttribute('aria-pressed', String(active.has(button.dataset['study'] as StudyId)));
  }
  rememberUrl();
  publishState();
}

const resolutionMs = (): number => RESOLUTION_MS[view.resolution] ?? 60_000;

function draw(): void {
  candles.setData(view.bars.map(candle));
  volumes.setData(view.bars.map(volume));
  for (const [id, entry] of active) {
    const [study, points] = Study.over(id, resolutionMs(), view.bars);
    entry.study = study;
    entry.series.setData(points.map(line));
  }
  publishState();
}

function rememberUrl(): void {
  const query = new URLSearchParams({ symbol: view.symbol, interval: view.resolution });
  if (view.studies.length > 0) query.set('indicators', view.studies.join(','));
  if (urlToken) query.set('token', urlToken); // a token typed into the page stays out of the URL
  history.replaceState(null, '', `?${query.toString()}`);
}

async function loadOlder(): Promise<void> {
  const first = view.bars[0];
  // Nothing older was stored and a backfill of it runs: its end reloads the range (a scroll
  // would only ask for it again). Older bars that are stored load meanwhile as ever.
  const waitingOlder = view.olderJob !== '' && view.history.waiting[view.olderJob] !== undefined;
  if (!view.info || !first || view.exhausted || view.loadingOlder || waitingOlder) return;
  view.loadingOlder = true;
  const generation = view.generation;
  try {
    const end = Math.min(first.time, view.from);
    const older = await ohlcv(view.symbol, view.resolution, { endDate: end, limit: PAGE_BARS });
    if (generation !== view.generation) return;
    view.from = Math.min(view.from, end - PAGE_BARS * resolutionMs(), older.bars[0]?.time ?? end);
    follow(older);
    const fresh = older.bars.filter((b) => b.time < first.time);
    if (fresh.length === 0) {
      // Nothing older stored: the end of history, unless a backfill of it is under way.
      const running = older.backfill && view.history.waiting[older.backfill.id] !== undefined;
      view.olderJob = running ? older.backfill!.id : '';
      view.exhausted = !running;
      publishState();
      return;
    }
    view.bars = [...fresh, ...view.bars];
    draw();
  } catch (err) {
    console.warn('loading older bars failed', err);
  } finally {
    view.loadingOlder = false;
  }
}

function onTick(bar: Bar): void {
  const last = view.bars[view.bars.length - 1];
  if (last && bar.time < last.time) return; // the datafeed already guarantees it; cheap to keep
  if (last && bar.time === last.time) view.bars[view.bars.length - 1] = bar;
  else view.bars.push(bar);
  candles.update(candle(bar));
  volumes.update(volume(bar));
  // The first bar of an empty chart: framed like a short series (afterwards the chart keeps the
  // newest bar where it is as bars are added: Lightweight Charts' shiftVisibleRangeOnNewBar).
  if (!last) frame();
  for (const { study, series } of active.values()) {
    const point = study.push(bar);
    if (point) series.update(line(point));
  }
  document.body.dataset['updates'] = String(Number(document.body.dataset['updates'] ?? '0') + 1);
  publishState();
}

function pressIntervalButton(resolution: ResolutionString): void {
  for (const button of $('intervals').querySelectorAll('button')) {
    button.setAttribute('aria-pressed', String(button.dataset['resolution'] === resolution));
  }
}

/**
 * Shows `symbol` at `resolution`. The chart on screen stays, live, until the new one has loaded:
 * a symbol the platform does not have, or a failed load, leaves a notice over a chart still usable.
 * With `until` (a replay's start) only the bars opening before it, and no live updates: the
 * replay's bars come from its session (replay.ts). Whether the chart was replaced.
 */
async function select(
  symbol: string,
  resolution: ResolutionString,
  until?: number,
): Promise<boolean> {
  const request = ++view.request;
  pressIntervalButton(resolution);
  if (view.bars.length === 0) showMessage('loading…');
  document.body.dataset['loading'] = 'true';
  let info: LibrarySymbolInfo;
  let first: OhlcvAnswer;
  const width = RESOLUTION_MS[resolution] ?? 60_000;
  const count = Math.max(PAGE_BARS, Math.ceil(FIRST_SPAN_MS / width));
  const askedAt = Date.now();
  try {
    info = await resolve(symbol);
    first = await ohlcv(symbol, resolution, {
      limit: count,
      ...(until === undefined ? {} : { endDate: until }),
    });
  } catch (err) {
    if (request !== view.request) return false;
    document.body.dataset['loading'] = 'false';
    const reason = (err as Error).message;
    if (await authNeeded()) return false;
    pressIntervalButton(view.resolution);
    $<HTMLInputElement>('symbol').value = view.symbol;
    showNotice(cannotShow(symbol, reason, view.known));
    if (view.bars.length === 0) showMessage(undefined);
    return false;
  }
  if (request !== view.request) return false;
  const generation = ++view.generation;
  if (view.listener) feed.unsubscribeBars(view.listener);
  Object.assign(view, {
    symbol,
    resolution,
    info,
    bars: first.bars,
    exhausted: false,
    listener: '',
    hoverTime: undefined,
    from: Math.min(
      (until ?? askedAt) - count * width,
      first.bars[0]?.time ?? Number.POSITIVE_INFINITY,
    ),
    history: IDLE,
    olderJob: '',
    reloadAgain: false,
    until,
  });
  clearTimeout(pollTimer);
  pollTimer = undefined;
  follow(first);
  rememberUrl();
  $<HTMLInputElement>('symbol').value = symbol;
  showNotice(undefined);
  document.body.dataset['loading'] = 'false';
  draw();
  frame();
  // No bars at all: the few-bars note says so (renderFewBars), as it does for a few.
  showMessage(undefined);
  if (until !== undefined) return true;
  view.listener = `page-${generation}`;
  // Reset (the stream was lost a while, or a backfill of the symbol stored history): the loaded
  // range is read again where the user is, rather than the chart starting over at the newest.
  feed.subscribeBars(info, resolution, onTick, view.listener, () => {
    if (generation === view.generation) void reloadLoaded();
  });
  return true;
}

/**
 * The user picked a symbol or an interval. While replaying, an interval goes to the replay
 * (its history and subscription at the new interval); another symbol leaves replay mode, since a
 * session replays the symbols it was made with, once the new symbol has loaded.
 */
async function choose(symbol: string, resolution: ResolutionString): Promise<void> {
  if (replay?.replaying && symbol === view.symbol) return replay.changeInterval(resolution);
  const shown = await select(symbol, resolution);
  if (shown && replay?.replaying) await replay.exit(false);
}

/**
 * Whether the API wants a token it does not have (AUTH_MODE=jwt): asked only after a failure,
 * since the datafeed's reasons are the server's words. If so, the token form is offered.
 */
async function authNeeded(): Promise<boolean> {
  const response = await fetch('/udf/config', { headers: authHeaders() }).catch(() => undefined);
  if (response?.status !== 401) return false;
  setConnection('token needed');
  showMessage(undefined);
  $('token-message').textContent = tokenNeeded(token !== undefined);
  $('token-form').hidden = false;
  document.body.dataset['tokenNeeded'] = 'true';
  $<HTMLInputElement>('token').focus();
  return true;
}

function setUpControls(): void {
  const nav = $('intervals');
  for (const [resolution, label] of RESOLUTIONS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = label;
    button.dataset['resolution'] = resolution;
    button.addEventListener('click', () => void choose(view.symbol, resolution));
    nav.append(button);
  }
  const studies = $('studies');
  for (const id of STUDY_IDS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = STUDIES[id].label;
    button.dataset['study'] = id;
    button.setAttribute('aria-pressed', 'false');
    button.addEventListener('click', () => setStudy(id, !active.has(id)));
    studies.append(button);
  }
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const typed = $<HTMLInputElement>('token').value.trim();
    if (!typed) return;
    sessionStorage.setItem(TOKEN_KEY, typed);
    // The datafeed takes its token when it is made: load the page again with the new one.
    const query = new URLSearchParams(location.search);
    query.delete('token');
    location.search = query.toString();
  });
  const input = $<HTMLInputElement>('symbol');
  const list = $('symbols');
  input.addEventListener('input', () => {
    feed.searchSymbols(input.value, '', '', (items) => {
      list.replaceChildren(
        ...items.map((item) =>
          Object.assign(document.createElement('option'), { value: item.symbol }),
        ),
      );
    });
  });
  $('search').addEventListener('submit', (event) => {
    event.preventDefault();
    if (input.value.trim()) void choose(input.value.trim().toUpperCase(), view.resolution);
  });
}

/** A licensed Charting Library, if one was placed in charting_library/ (docs/CHART.md). */
async function chartingLibrary(): Promise<boolean> {
  // Known at build time (vite.config.ts), so a page without the library asks for nothing: no 404.
  if (!__CHARTING_LIBRARY__) return false;
  const path = '/charting_library/charting_library.standalone.js';
  await new Promise<void>((ok, fail) => {
    const script = Object.assign(document.createElement('script'), {
      src: path,
      onload: () => ok(),
      onerror: fail,
    });
    document.head.append(script);
  });
  const tv = (
    window as unknown as {
      TradingView?: { widget: new (options: Record<string, unknown>) => unknown };
    }
  ).TradingView;
  if (!tv) return false;
  $('intervals').hidden = true;
  $('search').hidden = true;
  $('replay-toggle').hidden = true; // replay mode draws with Lightweight Charts only
  new tv.widget({
    container: $('chart'),
    datafeed: feed,
    symbol: view.symbol || 'BTC-USD',
    interval: view.resolution,
    library_path: '/charting_library/',
    autosize: true,
    theme: 'dark',
    timezone: 'Etc/UTC',
  });
  return true;
}

/** Replay mode (replay.ts), once the chart is set up. */
let replay: ReplayMode | undefined;

function setUpReplay(): void {
  replay = mountReplay({
    symbol: () => view.symbol,
    resolution: () => view.resolution,
    request: async (method, path, body) => {
      const response = await fetch(path, {
        method,
        headers: {
          ...authHeaders(),
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      return {
        status: response.status,
        body: (await response.json().catch(() => undefined)) as unknown,
      };
    },
    showBefore: (resolution, end) => select(view.symbol, resolution, end),
    onBar: onTick,
    goLive: async () => {
      await select(view.symbol, view.resolution);
    },
    notice: showNotice,
    openSocket: () => new WebSocket(streamUrl(location.origin, token)) as unknown as ReplaySocket,
    clock: systemClock,
  });
  // For tests and debugging (docs/CHART.md, state for tests): the bars the chart holds.
  Object.assign(window, { candlestream: { bars: (): Bar[] => view.bars.map((b) => ({ ...b })) } });
}

async function start(): Promise<void> {
  if (await chartingLibrary()) return;
  setUpChart();
  setUpControls();
  setUpReplay();
  const found = await new Promise<{ symbol: string }[]>((ok) => feed.searchSymbols('', '', '', ok));
  view.known = found.map((item) => item.symbol);
  const wanted = view.studies;
  if (!view.symbol) view.symbol = view.known[0] ?? 'BTC-USD';
  await select(view.symbol, view.resolution);
  for (const id of wanted) setStudy(id, true);
}

void start();
