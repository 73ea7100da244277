/**
 * The chart page in a real browser (Debian's Chromium through playwright-core, no browser
 * download) against the running datastore, fed by the fixed consumer and the synthetic producer,
 * each its own process as `pnpm start` runs them: candles are drawn, a live update changes the
 * last candle, switching interval redraws, scrolling left loads older bars, the few-bars note
 * shows only on an interval with few candles. Screenshots are kept in .artifacts/. The fresh start
 * (an empty store) is chart-fresh.e2e.test.ts.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DAY_MS } from '@candlestream/core';
import { needPrerequisite, needServices, uniqueName } from '@candlestream/testkit';
import type { Browser, Page } from 'playwright-core';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from './chart-testing.js';
import {
  apart,
  ARTIFACTS,
  browserMissing,
  dataset,
  expectLegendClearOfAxes,
  launchChromium,
  PHONE,
  startPlatform,
  until,
} from './chart-testing.js';

const services = needServices(['postgres', 'redis']);
const skipBrowser = needPrerequisite(browserMissing());

describe.skipIf(services.skip || skipBrowser)('the chart page in Chromium', () => {
  let platform: Platform;
  let browser: Browser;
  let page: Page;
  let url: string;

  beforeAll(async () => {
    platform = await startPlatform('chart', {
      postgresUrl: services.get('postgres').url,
      redisUrl: services.get('redis').url,
      symbols: 'BTC-USD,ETH-USD',
    });
    // Two days of history first (so there is something to scroll back to), then live trades.
    const history = platform.start('producer', {
      SYNTHETIC_START: new Date(Date.now() - 2 * DAY_MS).toISOString(),
      SYNTHETIC_RATE: '0.2',
      SYNTHETIC_LIMIT: String(2 * 86_400 * 0.2 - 50),
    });
    expect(await history.exited).toBe(0);
    platform.start('producer', { SYNTHETIC_RATE: '20', SYNTHETIC_SEED: '12' });
    url = await platform.startDatastore();
    browser = await launchChromium();
    // The test's waits evaluate text in the page, which the page's own CSP (no eval) refuses;
    // the last test loads the page without this bypass and checks it under its real CSP.
    page = await browser.newPage({ viewport: PHONE, bypassCSP: true }); // phone-sized
  });

  afterAll(async () => {
    await browser?.close();
    await platform?.stop();
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
    // The first load is a day of 1m bars (1,440): about 60 of them pass per drag on a phone.
    for (let i = 0; i < 40 && Number(await dataset(page, 'firstTime')) >= firstBefore; i++) {
      await page.mouse.move(box.x + 40, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width - 20, box.y + box.height / 2, { steps: 8 });
      await page.mouse.up();
      await page.waitForTimeout(100);
    }
    expect(Number(await dataset(page, 'firstTime'))).toBeLessThan(firstBefore);
    await page.screenshot({ path: join(ARTIFACTS, 'chart-scrolled.png') });
    expect(errors).toEqual([]);
  });

  it('works under its own Content-Security-Policy: no violation, candles drawn', async () => {
    const strict = await browser.newPage({ viewport: PHONE });
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
    const fresh = await browser.newPage({ viewport: PHONE, bypassCSP: true });
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
    // Above the chart, not over its candles or price axis.
    const noticeBox = (await chart.locator('#notice').boundingBox())!;
    expect(apart(noticeBox, (await chart.locator('#chart').boundingBox())!)).toBe(true);
    await chart.screenshot({ path: join(ARTIFACTS, 'chart-unknown-symbol.png') });
    // Still live, and still answers the controls.
    const updates = Number(await dataset(chart, 'updates'));
    await until(chart, `Number(d.updates) > ${updates + 1}`);
    await chart.getByRole('button', { name: '5m', exact: true }).click();
    await until(chart, "d.resolution === '5' && d.symbol === 'BTC-USD' && (d.notice ?? '') === ''");
    await chart.close();
  });

  it('says there are few candles only where there are: not on 1m with two days stored, on 1W, and no more once back on 1m', async () => {
    const chart = await openChart('symbol=BTC-USD&interval=1');
    expect(await dataset(chart, 'fewBars')).toBe('false');
    expect(await chart.locator('#few-bars').isHidden()).toBe(true);
    await chart.getByRole('button', { name: '1W', exact: true }).click();
    await until(chart, "d.resolution === '1W' && Number(d.barCount) > 0 && d.fewBars === 'true'");
    // Weekly candles: the day the first opened, no time of day.
    expect(await chart.locator('#few-bars').innerText()).toMatch(
      /^\d candles? so far, since \d{1,2} [A-Z][a-z]{2}( \d{4})?\. Older history isn't stored yet/,
    );
    expect(
      Number(await dataset(chart, 'visibleTo')) - Number(await dataset(chart, 'visibleFrom')),
    ).toBeGreaterThanOrEqual(60);
    await chart.screenshot({ path: join(ARTIFACTS, 'chart-1w-few-bars.png') });
    await chart.getByRole('button', { name: '1m', exact: true }).click();
    await until(chart, "d.resolution === '1' && Number(d.barCount) > 100 && d.fewBars === 'false'");
    expect(await chart.locator('#few-bars').isHidden()).toBe(true);
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
    await expectLegendClearOfAxes(chart);
    for (const name of ['SMA 20', 'EMA 50', 'VWAP', 'RSI 14'])
      await chart.getByRole('button', { name, exact: true }).click();
    await until(chart, "d.indicators === 'sma,ema,vwap,rsi' && d.rsiValue !== ''");
    await expectLegendClearOfAxes(chart);
    await chart.screenshot({ path: join(ARTIFACTS, 'chart-phone.png') });
    await chart.close();
  });

  it('with AUTH_MODE=jwt and no token, says a token is needed and takes one in a field', async () => {
    const secret = 'chart-e2e-secret-at-least-32-characters';
    const securedUrl = await platform.startDatastore({
      AUTH_MODE: 'jwt',
      JWT_SECRET: secret,
      CACHE_PREFIX: `${uniqueName('chart_jwt')}:`,
    });
    const chart = await browser.newPage({ viewport: PHONE, bypassCSP: true });
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
    const strict = await browser.newPage({ viewport: PHONE });
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
