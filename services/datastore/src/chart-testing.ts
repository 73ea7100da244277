/**
 * What the chart page's Chromium e2e tests share (chart.e2e.test.ts, chart-fresh.e2e.test.ts,
 * chart-history.e2e.test.ts, chart-replay.e2e.test.ts):
 * the platform started as processes the way `pnpm start` runs them, the browser, and reading the
 * page's state and pixels.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker } from '@candlestream/broker';
import type { Bar, Tick } from '@candlestream/core';
import { migrate, Repository } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess } from '@candlestream/testkit';
import { createTestDatabase, spawnService, uniqueName } from '@candlestream/testkit';
import { builtPage } from '@candlestream/web';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { expect } from 'vitest';

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const ARTIFACTS = join(ROOT, '.artifacts');
export const PHONE = { width: 390, height: 760 };
export const DESKTOP = { width: 1280, height: 800 };
// The flags this machine's probe uses: no sandbox as root, and no background traffic to a closed network.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why the browser tests cannot run here, if they cannot (for testkit's `needPrerequisite`). */
export function browserMissing(): string | undefined {
  if (!existsSync(CHROMIUM))
    return `Chromium is not installed at ${CHROMIUM} (apt-get install chromium; .ci/run does)`;
  if (!builtPage()) return 'the chart page is not built (pnpm install builds it)';
  return undefined;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface Platform {
  /** Starts `service` (its src/main.ts) as a process with the platform's env and `extra`. */
  start(service: string, extra?: Record<string, string>): ServiceProcess;
  /** Starts a datastore and returns its base URL once it listens. */
  startDatastore(extra?: Record<string, string>): Promise<string>;
  /** The platform's database (DATABASE_URL of its services), for tests that store data directly. */
  databaseUrl: string;
  stop(): Promise<void>;
}

/**
 * A broker, a migrated database of its own and the fixed consumer, consuming; services started
 * through it share their settings and are killed by `stop()`.
 */
export async function startPlatform(
  name: string,
  env: { postgresUrl: string; redisUrl: string; symbols: string },
): Promise<Platform> {
  const dataDir = await mkdtemp(join(tmpdir(), `cs-${name}-`));
  const broker = await startBroker({ port: 0, dataDir });
  const db = await createTestDatabase(env.postgresUrl, name);
  await migrate({ url: db.url }, { logger: silentLogger() });
  const base = {
    KAFKA_BROKERS: broker.brokers,
    DATABASE_URL: db.url,
    REDIS_URL: env.redisUrl,
    CACHE_PREFIX: `${uniqueName(name)}:`,
    SYMBOLS: env.symbols,
    HEALTH_PORT: '0',
    PORT: '0',
    SYNTHETIC_SEED: '11',
  };
  const processes: ServiceProcess[] = [];
  const start = (service: string, extra: Record<string, string> = {}): ServiceProcess => {
    const entry = join(ROOT, 'services', service, 'src', 'main.ts');
    const p = spawnService(entry, { ...base, ...extra });
    processes.push(p);
    return p;
  };
  const consumer = start('fixed-consumer');
  await consumer.waitForLine((l) => l['to'] === 'consuming.healthy', 60_000);
  return {
    start,
    databaseUrl: db.url,
    async startDatastore(extra = {}) {
      const datastore = start('datastore', extra);
      const listening = await datastore.waitForLine((l) => l['msg'] === 'listening', 60_000);
      return `http://127.0.0.1:${String(listening['port'])}`;
    },
    async stop() {
      for (const p of processes) await p.kill();
      await broker.stop();
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The page publishes its state as data- attributes on <body> (see packages/web/src/page/main.ts). */
export async function dataset(page: Page, key: string): Promise<string> {
  const attribute = `data-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return (await page.locator('body').getAttribute(attribute)) ?? '';
}

/**
 * Waits for a condition on the page's state (`d` is document.body.dataset); written as text,
 * since it runs in the browser, so the page must be opened with `bypassCSP` (its CSP bans eval).
 */
export function until(page: Page, expression: string, timeoutMs = 30_000): Promise<unknown> {
  return page.waitForFunction(
    `(() => { const d = document.body.dataset; return ${expression}; })()`,
    null,
    { timeout: timeoutMs },
  );
}

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Whether two boxes do not overlap (touching edges is apart). */
export function apart(a: Box, b: Box): boolean {
  return (
    a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y
  );
}

/** Asserts the legend does not run under a price axis (a narrow cell right of Lightweight Charts' layout table). */
export async function expectLegendClearOfAxes(page: Page): Promise<void> {
  const area = (await page.locator('#chart').boundingBox())!;
  const legend = (await page.locator('#legend').boundingBox())!;
  const axes = [];
  for (const cell of await page.locator('#chart td').all()) {
    const box = await cell.boundingBox();
    if (box && box.width > 0 && box.width < area.width / 2 && box.x > area.x + area.width / 2)
      axes.push(box);
  }
  expect(axes.length).toBeGreaterThan(0);
  for (const axis of axes) {
    expect(
      apart(legend, axis),
      `legend ${JSON.stringify(legend)} over axis ${JSON.stringify(axis)}`,
    ).toBe(true);
  }
}

/** Candles as drawn: runs of pixel columns in a candle colour on the price pane, in CSS px. */
export interface DrawnCandles {
  /** The price pane's width (px); candles' x are from its left edge. */
  paneWidth: number;
  candles: { left: number; right: number }[];
}

/**
 * Finds the candles on the first pane's canvas by their colours (the page's UP and DOWN), so a
 * test sees what is drawn rather than what the page says it drew. Rows filled across most of the
 * width in a candle colour are the last-price line and are skipped. Text, run in the page (this
 * package has no DOM types), so the page must be opened with `bypassCSP`.
 */
export function drawnCandles(page: Page): Promise<DrawnCandles> {
  return page.evaluate<DrawnCandles>(DRAWN_CANDLES);
}

const DRAWN_CANDLES = `(() => {
  const colours = [[0x26, 0xa6, 0x9a], [0xef, 0x53, 0x50]];
  const chartWidth = document.getElementById('chart').getBoundingClientRect().width;
  // The first wide canvas is the price pane's own (the time axis and price axes come later).
  const canvas = [...document.querySelectorAll('#chart canvas')].find(
    (c) => c.getBoundingClientRect().width > chartWidth / 2,
  );
  const scale = canvas.width / canvas.getBoundingClientRect().width;
  const { width, height } = canvas;
  const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  const candle = (i) =>
    colours.some(([r, g, b]) =>
      Math.abs(pixels[i] - r) < 12 && Math.abs(pixels[i + 1] - g) < 12 && Math.abs(pixels[i + 2] - b) < 12);
  const lineRows = new Set();
  for (let y = 0; y < height; y++) {
    let count = 0;
    for (let x = 0; x < width; x++) if (candle((y * width + x) * 4)) count++;
    if (count > width * 0.3) lineRows.add(y);
  }
  const columns = [];
  for (let x = 0; x < width; x++) {
    let hit = false;
    for (let y = 0; y < height && !hit; y++) hit = !lineRows.has(y) && candle((y * width + x) * 4);
    columns.push(hit);
  }
  const candles = [];
  for (let x = 0; x < width; x++) {
    if (!columns[x]) continue;
    const left = x;
    while (columns[x + 1]) x++;
    candles.push({ left: left / scale, right: (x + 1) / scale });
  }
  return { paneWidth: width / scale, candles };
})()`;

/**
 * Stores `ticks` in the platform's database as the fixed consumer would (Repository.insertTrades
 * merges them into their minutes), so a test knows every trade behind the bars it reads.
 */
export async function storeTrades(platform: Platform, ticks: readonly Tick[]): Promise<void> {
  const repository = new Repository({ url: platform.databaseUrl, logger: silentLogger() });
  try {
    for (let i = 0; i < ticks.length; i += STORE_BATCH_TRADES)
      await repository.insertTrades(ticks.slice(i, i + STORE_BATCH_TRADES));
  } finally {
    await repository.close();
  }
}
const STORE_BATCH_TRADES = 2_000;

/** The bars the chart holds (the page's `window.candlestream.bars()`), times epoch ms. */
export function chartBars(page: Page): Promise<Bar[]> {
  return page.evaluate<Bar[]>('window.candlestream.bars()');
}
