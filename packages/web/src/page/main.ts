/**
 * The chart page: candles and volume from the Candlestream datafeed (the TradingView Datafeed
 * API over /udf and /stream), drawn with TradingView Lightweight Charts. If a licensed Charting
 * Library has been placed in charting_library/ (docs/CHART.md), it is used with the same datafeed.
 */
import type { Bar, LibrarySymbolInfo, ResolutionString } from '@candlestream/datafeed';
import { createDatafeed } from '@candlestream/datafeed';
import type {
  CandlestickData,
  HistogramData,
  IChartApi,
  ISeriesApi,
  UTCTimestamp,
} from 'lightweight-charts';
import { CandlestickSeries, createChart, HistogramSeries } from 'lightweight-charts';

/** Bars asked for at first and on every scroll to the left edge. */
const PAGE_BARS = 300;
/** Load older bars once fewer than this many are left of the visible range. */
const LOAD_MORE_WITHIN_BARS = 30;
const RESOLUTIONS: [ResolutionString, string][] = [
  ['1', '1m'],
  ['5', '5m'],
  ['15', '15m'],
  ['60', '1h'],
  ['240', '4h'],
  ['1D', '1D'],
  ['1W', '1W'],
];
const UP = '#26a69a';
const DOWN = '#ef5350';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const token = params.get('token') ?? undefined;

function setConnection(state: string): void {
  document.body.dataset['connection'] = state;
  $('connection').textContent = state;
}

const feed = createDatafeed({
  baseUrl: location.origin,
  ...(token ? { token } : {}),
  onConnectionState: setConnection,
});

// The Datafeed API is callback-based; the page reads better with promises.
const resolve = (symbol: string): Promise<LibrarySymbolInfo> =>
  new Promise((ok, fail) =>
    feed.resolveSymbol(symbol, ok, (reason) => fail(new Error(String(reason)))),
  );
const bars = (info: LibrarySymbolInfo, resolution: ResolutionString, to: number, first: boolean) =>
  new Promise<{ bars: Bar[]; noData: boolean }>((ok, fail) =>
    feed.getBars(
      info,
      resolution,
      { from: 0, to, countBack: PAGE_BARS, firstDataRequest: first },
      (list, meta) => ok({ bars: list, noData: meta?.noData === true }),
      (reason) => fail(new Error(String(reason))),
    ),
  );

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

/** What the page shows now; `generation` makes answers to an earlier selection harmless. */
const view = {
  symbol: params.get('symbol') ?? '',
  resolution: (params.get('interval') ?? '1') as ResolutionString,
  info: undefined as LibrarySymbolInfo | undefined,
  bars: [] as Bar[],
  exhausted: false,
  loadingOlder: false,
  generation: 0,
  listener: '',
};

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
  });
  const legend = $('legend');
  legend.textContent = last
    ? `${view.symbol} · ${RESOLUTIONS.find(([r]) => r === view.resolution)?.[1] ?? view.resolution}  O ${last.open} H ${last.high} L ${last.low} C ${last.close}`
    : view.symbol;
}

function showMessage(text: string | undefined): void {
  const el = $('message');
  el.hidden = text === undefined;
  el.textContent = text ?? '';
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
  volumes = chart.addSeries(HistogramSeries, { priceScaleId: '', priceFormat: { type: 'volume' } });
  volumes.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.1, bottom: 0.25 } });
  chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
    if (range && range.from < LOAD_MORE_WITHIN_BARS) void loadOlder();
  });
}

function draw(): void {
  candles.setData(view.bars.map(candle));
  volumes.setData(view.bars.map(volume));
  publishState();
}

async function loadOlder(): Promise<void> {
  const first = view.bars[0];
  if (!view.info || !first || view.exhausted || view.loadingOlder) return;
  view.loadingOlder = true;
  const generation = view.generation;
  try {
    const older = await bars(view.info, view.resolution, Math.floor(first.time / 1_000), false);
    if (generation !== view.generation) return;
    const fresh = older.bars.filter((b) => b.time < first.time);
    if (fresh.length === 0) {
      view.exhausted = true;
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
  document.body.dataset['updates'] = String(Number(document.body.dataset['updates'] ?? '0') + 1);
  publishState();
}

async function select(symbol: string, resolution: ResolutionString): Promise<void> {
  const generation = ++view.generation;
  if (view.listener) feed.unsubscribeBars(view.listener);
  Object.assign(view, {
    symbol,
    resolution,
    info: undefined,
    bars: [],
    exhausted: false,
    listener: '',
  });
  history.replaceState(
    null,
    '',
    `?symbol=${encodeURIComponent(symbol)}&interval=${resolution}${token ? `&token=${token}` : ''}`,
  );
  for (const button of $('intervals').querySelectorAll('button')) {
    button.setAttribute('aria-pressed', String(button.dataset['resolution'] === resolution));
  }
  $<HTMLInputElement>('symbol').value = symbol;
  showMessage('loading…');
  try {
    const info = await resolve(symbol);
    const first = await bars(info, resolution, Math.ceil(Date.now() / 1_000) + 60, true);
    if (generation !== view.generation) return;
    view.info = info;
    view.bars = first.bars;
    draw();
    chart.timeScale().scrollToRealTime();
    showMessage(first.bars.length === 0 ? 'no data yet' : undefined);
    view.listener = `page-${generation}`;
    feed.subscribeBars(
      info,
      resolution,
      onTick,
      view.listener,
      () => void select(view.symbol, view.resolution),
    );
  } catch (err) {
    if (generation === view.generation)
      showMessage(`cannot show ${symbol}: ${(err as Error).message}`);
  }
}

function setUpControls(): void {
  const nav = $('intervals');
  for (const [resolution, label] of RESOLUTIONS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = label;
    button.dataset['resolution'] = resolution;
    button.addEventListener('click', () => void select(view.symbol, resolution));
    nav.append(button);
  }
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
    if (input.value.trim()) void select(input.value.trim().toUpperCase(), view.resolution);
  });
}

/** A licensed Charting Library, if one was placed in charting_library/ (docs/CHART.md). */
async function chartingLibrary(): Promise<boolean> {
  const path = '/charting_library/charting_library.standalone.js';
  const head = await fetch(path, { method: 'HEAD' }).catch(() => undefined);
  if (!head?.ok) return false;
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

async function start(): Promise<void> {
  if (await chartingLibrary()) return;
  setUpChart();
  setUpControls();
  if (!view.symbol) {
    const found = await new Promise<{ symbol: string }[]>((ok) =>
      feed.searchSymbols('', '', '', ok),
    );
    view.symbol = found[0]?.symbol ?? 'BTC-USD';
  }
  await select(view.symbol, view.resolution);
}

void start();
