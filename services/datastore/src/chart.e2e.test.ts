/**
 * The chart page in a real browser (Debian's Chromium through playwright-core, no browser
 * download) against the running datastore, fed by the fixed consumer and the synthetic producer,
 * each its own process as `pnpm start` runs them: candles are drawn, a live update changes the
 * last candle, switching interval redraws, scrolling left loads older bars. A screenshot is kept
 * in .artifacts/.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker, type RunningBroker } from '@candlestream/broker';
import { DAY_MS } from '@candlestream/core';
import { migrate } from '@candlestream/db';
import { silentLogger } from '@candlestream/logger';
import type { ServiceProcess, TestDatabase } from '@candlestream/testkit';
import {
  createTestDatabase,
  needPrerequisite,
  needServices,
  spawnService,
  uniqueName,
} from '@candlestream/testkit';
import { builtPage } from '@candlestream/web';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const services = needServices(['postgres', 'redis']);
const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const main = (service: string): string => join(ROOT, 'services', service, 'src', 'main.ts');
const ARTIFACTS = join(ROOT, '.artifacts');
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

const missing = !existsSync(CHROMIUM)
  ? `Chromium is not installed at ${CHROMIUM} (apt-get install chromium; .ci/run does)`
  : !builtPage()
    ? 'the chart page is not built (pnpm install builds it)'
    : undefined;
const skipBrowser = needPrerequisite(missing);

/** The page publishes its state as data- attributes on <body> (see packages/web/src/page/main.ts). */
async function dataset(page: Page, key: string): Promise<string> {
  const attribute = `data-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return (await page.locator('body').getAttribute(attribute)) ?? '';
}

/** Waits for a condition on the page's state; written as text, since it runs in the browser. */
function until(page: Page, expression: string): Promise<unknown> {
  return page.waitForFunction(
    `(() => { const d = document.body.dataset; return ${expression}; })()`,
    null,
    {
      timeout: 30_000,
    },
  );
}

describe.skipIf(services.skip || skipBrowser)('the chart page in Chromium', () => {
  let broker: RunningBroker;
  let dataDir: string;
  let db: TestDatabase;
  let browser: Browser;
  let page: Page;
  let url: string;
  let startService: (service: string, extra?: Record<string, string>) => ServiceProcess;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cs-chart-'));
    broker = await startBroker({ port: 0, dataDir });
    db = await createTestDatabase(services.get('postgres').url, 'chart');
    await migrate({ url: db.url }, { logger: silentLogger() });
    const env = {
      KAFKA_BROKERS: broker.brokers,
      DATABASE_URL: db.url,
      REDIS_URL: services.get('redis').url,
      CACHE_PREFIX: `${uniqueName('chart')}:`,
      SYMBOLS: 'BTC-USD,ETH-USD',
      HEALTH_PORT: '0',
      PORT: '0',
      SYNTHETIC_SEED: '11',
    };
    const start = (service: string, extra: Record<string, string> = {}): ServiceProcess => {
      const p = spawnService(main(service), { ...env, ...extra });
      processes.push(p);
      return p;
    };
    startService = start;
    const consumer = start('fixed-consumer');
    await consumer.waitForLine((l) => l['to'] === 'consuming.healthy', 60_000);
    // Two days of history first (so there is something to scroll back to), then live trades.
    const history = start('producer', {
      SYNTHETIC_START: new Date(Date.now() - 2 * DAY_MS).toISOString(),
      SYNTHETIC_RATE: '0.2',
      SYNTHETIC_LIMIT: String(2 * 86_400 * 0.2 - 50),
    });
    expect(await history.exited).toBe(0);
    start('producer', { SYNTHETIC_RATE: '20', SYNTHETIC_SEED: '12' });
    const datastore = start('datastore');
    const listening = await datastore.waitForLine((l) => l['msg'] === 'listening', 60_000);
    url = `http://127.0.0.1:${String(listening['port'])}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    // The test's waits evaluate text in the page, which the page's own CSP (no eval) refuses;
    // the last test loads the page without this bypass and checks it under its real CSP.
    page = await browser.newPage({ viewport: { width: 390, height: 760 }, bypassCSP: true }); // phone-sized
  });

  afterAll(async () => {
    await browser?.close();
    for (const p of processes) await p.kill();
    await broker?.stop();
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('draws candles, follows live updates, switches interval and loads older bars on scroll', async () => {
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${url}/?symbol=BTC-USD&interval=1`);
    await until(page, 'Number(d.barCount ?? 0) > 100');
    await until(page, "d.connection === 'open'");
    expect(await page.locator('#chart canvas').count()).toBeGreaterThan(0);

    // A live trade changes the last candle.
    const updatesBefore = Number(await dataset(page, 'updates'));
    await until(page, `Number(d.updates ?? 0) > ${updatesBefore + 2}`);
    const lastTime = Number(await dataset(page, 'lastTime'));
    expect(Date.now() - lastTime).toBeLessThan(2 * 60_000);

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'chart-1m.png') });

    // Switching interval redraws with 5-minute bars.
    await page.getByRole('button', { name: '5m', exact: true }).click();
    await until(page, "d.resolution === '5' && Number(d.barCount) > 0");
    const first5 = Number(await dataset(page, 'firstTime'));
    expect(first5 % (5 * 60_000)).toBe(0);

    // Back to 1m, then drag the chart right (towards the past) until older bars arrive.
    await page.getByRole('button', { name: '1m', exact: true }).click();
    await until(page, "d.resolution === '1' && Number(d.barCount) > 100");
    const firstBefore = Number(await dataset(page, 'firstTime'));
    const box = (await page.locator('#chart').boundingBox())!;
    for (let i = 0; i < 12 && Number(await dataset(page, 'firstTime')) >= firstBefore; i++) {
      await page.mouse.move(box.x + 40, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width - 20, box.y + box.height / 2, { steps: 8 });
      await page.mouse.up();
      await page.waitForTimeout(300);
    }
    expect(Number(await dataset(page, 'firstTime'))).toBeLessThan(firstBefore);
    await page.screenshot({ path: join(ARTIFACTS, 'chart-scrolled.png') });
    expect(errors).toEqual([]);
  });

  it('works under its own Content-Security-Policy: no violation, candles drawn', async () => {
    const strict = await browser.newPage({ viewport: { width: 390, height: 760 } });
    const violations: string[] = [];
    strict.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    strict.on('pageerror', (err) => violations.push(err.message));
    const response = await strict.goto(`${url}/?symbol=BTC-USD&interval=1`);
    expect(response?.headers()['content-security-policy']).toMatch(/script-src 'self'/);
    await expect
      .poll(
        async () => Number((await strict.locator('body').getAttribute('data-bar-count')) ?? 0),
        {
          timeout: 30_000,
        },
      )
      .toBeGreaterThan(100);
    expect(await strict.locator('#chart canvas').count()).toBeGreaterThan(0);
    await strict.goto(`${url}/docs`);
    expect(violations).toEqual([]);
    await strict.close();
  });

  /** A fresh phone-sized page on the chart; `bypassCSP` only so that `until` may evaluate text. */
  async function openChart(query: string): Promise<Page> {
    const fresh = await browser.newPage({ viewport: { width: 390, height: 760 }, bypassCSP: true });
    await fresh.goto(`${url}/?${query}`);
    await until(fresh, 'Number(d.barCount ?? 0) > 100');
    return fresh;
  }

  it('the legend follows the crosshair: an older candle under the mouse, the newest after it leaves', async () => {
    const chart = await openChart('symbol=BTC-USD&interval=1');
    const newest = await dataset(chart, 'lastTime');
    expect(await dataset(chart, 'legendTime')).toBe(newest);
    const newestText = await chart.locator('#legend').innerText();
    const box = (await chart.locator('#chart').boundingBox())!;
    await chart.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
    await until(chart, `d.legendTime !== '' && Number(d.legendTime) < ${newest}`);
    const hovered = Number(await dataset(chart, 'legendTime'));
    expect(hovered % 60_000).toBe(0);
    expect(await chart.locator('#legend').innerText()).not.toBe(newestText);
    await chart.screenshot({ path: join(ARTIFACTS, 'chart-crosshair.png') });
    // Off the chart, back to the newest bar.
    await chart.mouse.move(5, 5);
    await until(chart, 'd.legendTime === d.lastTime');
    await chart.close();
  });

  it('switches to 30m, which the API serves', async () => {
    const chart = await openChart('symbol=BTC-USD&interval=1');
    await chart.getByRole('button', { name: '30m', exact: true }).click();
    await until(chart, "d.resolution === '30' && Number(d.barCount) > 0");
    expect(Number(await dataset(chart, 'firstTime')) % (30 * 60_000)).toBe(0);
    expect(new URL(chart.url()).searchParams.get('interval')).toBe('30');
    await chart.close();
  });

  it('an unknown symbol is said plainly and the previous chart stays live and usable', async () => {
    const chart = await openChart('symbol=BTC-USD&interval=1');
    const bars = await dataset(chart, 'barCount');
    await chart.locator('#symbol').fill('DOGE-USD');
    await chart.locator('#symbol').press('Enter');
    await until(chart, "(d.notice ?? '') !== ''");
    const notice = await chart.locator('#notice').innerText();
    expect(notice).toContain('DOGE-USD is not a symbol this platform has; try BTC-USD, ETH-USD');
    expect(notice).not.toContain('unknown_symbol');
    expect(await dataset(chart, 'symbol')).toBe('BTC-USD');
    expect(await dataset(chart, 'barCount')).toBe(bars);
    expect(await chart.locator('#message').isHidden()).toBe(true);
    await chart.screenshot({ path: join(ARTIFACTS, 'chart-unknown-symbol.png') });
    // Still live, and still answers the controls.
    const updates = Number(await dataset(chart, 'updates'));
    await until(chart, `Number(d.updates) > ${updates + 1}`);
    await chart.getByRole('button', { name: '5m', exact: true }).click();
    await until(chart, "d.resolution === '5' && d.symbol === 'BTC-USD' && (d.notice ?? '') === ''");
    await chart.close();
  });

  it('an indicator toggled on is drawn and follows the forming bar (SMA over candles, RSI in its own pane)', async () => {
    const chart = await openChart('symbol=BTC-USD&interval=1');
    await chart.getByRole('button', { name: 'SMA 20', exact: true }).click();
    await until(chart, "d.indicators === 'sma' && d.smaValue !== ''");
    const sma = Number(await dataset(chart, 'smaValue'));
    expect(sma).toBeGreaterThan(0);
    await until(chart, `d.smaValue !== '${String(sma)}'`);
    await chart.getByRole('button', { name: 'RSI 14', exact: true }).click();
    await until(chart, "d.indicators === 'sma,rsi' && d.rsiValue !== ''");
    const rsi = Number(await dataset(chart, 'rsiValue'));
    expect(rsi).toBeGreaterThanOrEqual(0);
    expect(rsi).toBeLessThanOrEqual(100);
    await until(chart, `d.rsiValue !== '${String(rsi)}'`);
    expect(await chart.locator('#legend').innerText()).toContain('SMA 20');
    expect(new URL(chart.url()).searchParams.get('indicators')).toBe('sma,rsi');
    await chart.screenshot({ path: join(ARTIFACTS, 'chart-indicators.png') });
    // Off again: its value is gone from the page.
    await chart.getByRole('button', { name: 'SMA 20', exact: true }).click();
    await until(chart, "d.indicators === 'rsi' && d.smaValue === ''");
    await chart.close();
  });

  it('on a phone the legend stays clear of the price axis, with and without indicators', async () => {
    const chart = await openChart('symbol=BTC-USD&interval=1');
    const area = (await chart.locator('#chart').boundingBox())!;
    const legendClearOfAxes = async (): Promise<void> => {
      const legend = (await chart.locator('#legend').boundingBox())!;
      // The price axes: the narrow cells on the right of Lightweight Charts' layout table.
      const axes = [];
      for (const cell of await chart.locator('#chart td').all()) {
        const box = await cell.boundingBox();
        if (box && box.width > 0 && box.width < area.width / 2 && box.x > area.x + area.width / 2)
          axes.push(box);
      }
      expect(axes.length).toBeGreaterThan(0);
      for (const axis of axes) {
        const apart =
          legend.x + legend.width <= axis.x ||
          axis.x + axis.width <= legend.x ||
          legend.y + legend.height <= axis.y ||
          axis.y + axis.height <= legend.y;
        expect(apart, `legend ${JSON.stringify(legend)} over axis ${JSON.stringify(axis)}`).toBe(
          true,
        );
      }
    };
    await legendClearOfAxes();
    for (const name of ['SMA 20', 'EMA 50', 'VWAP', 'RSI 14'])
      await chart.getByRole('button', { name, exact: true }).click();
    await until(chart, "d.indicators === 'sma,ema,vwap,rsi' && d.rsiValue !== ''");
    await legendClearOfAxes();
    await chart.screenshot({ path: join(ARTIFACTS, 'chart-phone.png') });
    await chart.close();
  });

  it('with AUTH_MODE=jwt and no token, says a token is needed and takes one in a field', async () => {
    const secret = 'chart-e2e-secret-at-least-32-characters';
    const secured = startService('datastore', {
      AUTH_MODE: 'jwt',
      JWT_SECRET: secret,
      CACHE_PREFIX: `${uniqueName('chart_jwt')}:`,
    });
    const listening = await secured.waitForLine((l) => l['msg'] === 'listening', 60_000);
    const securedUrl = `http://127.0.0.1:${String(listening['port'])}`;
    const chart = await browser.newPage({ viewport: { width: 390, height: 760 }, bypassCSP: true });
    await chart.goto(`${securedUrl}/?symbol=BTC-USD&interval=1`);
    await until(chart, "d.tokenNeeded === 'true'");
    expect(await chart.locator('#connection').innerText()).toBe('token needed');
    expect(await chart.locator('#token-message').innerText()).toMatch(/needs an access token/);
    await chart.screenshot({ path: join(ARTIFACTS, 'chart-token-needed.png') });
    const token = jwt.sign({ sub: 'e2e' }, secret, { algorithm: 'HS256', expiresIn: 300 });
    await chart.locator('#token').fill(token);
    await chart.getByRole('button', { name: 'Use token' }).click();
    await until(chart, "Number(d.barCount ?? 0) > 100 && d.connection === 'open'");
    expect(await chart.locator('#token-form').isHidden()).toBe(true);
    // Kept for the tab, not put in the URL (which ends up in history and logs).
    expect(new URL(chart.url()).searchParams.has('token')).toBe(false);
    await chart.close();
  });

  it('loads with no failed request in the console: no favicon.ico or charting-library 404', async () => {
    const strict = await browser.newPage({ viewport: { width: 390, height: 760 } });
    const failed: string[] = [];
    strict.on('response', (r) => {
      if (r.status() >= 400) failed.push(`${String(r.status())} ${r.url()}`);
    });
    strict.on('console', (m) => {
      if (m.type() === 'error') failed.push(m.text());
    });
    await strict.goto(`${url}/?symbol=BTC-USD&interval=1`);
    await expect
      .poll(
        async () => Number((await strict.locator('body').getAttribute('data-bar-count')) ?? 0),
        {
          timeout: 30_000,
        },
      )
      .toBeGreaterThan(100);
    expect(failed).toEqual([]);
    const icon = await strict.request.get(`${url}/favicon.svg`);
    expect(icon.status()).toBe(200);
    expect(icon.headers()['content-type']).toMatch(/svg/);
    await strict.close();
  });
});
