/**
 * The chart page on a fresh start, as a new user meets it: an empty database and only live
 * synthetic trades (no history), the platform's services each a process as `pnpm start` runs
 * them. Until there are enough candles to fill the chart, the page frames the few there are at a
 * normal width with room on their right, and says in a line above the chart how many there are
 * and that older history is not stored yet. Then the new user's flow: the legend follows the
 * crosshair, interval and symbol switch (an unknown symbol too), an indicator is switched on and
 * moves live, on a phone with nothing overlapping. Screenshots are kept in .artifacts/.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceProcess } from '@candlestream/testkit';
import { needPrerequisite, needServices } from '@candlestream/testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from './chart-testing.js';
import {
  apart,
  ARTIFACTS,
  browserMissing,
  dataset,
  DESKTOP,
  drawnCandles,
  expectLegendClearOfAxes,
  launchChromium,
  PHONE,
  startPlatform,
  until,
} from './chart-testing.js';

const services = needServices(['postgres', 'redis']);
const skipBrowser = needPrerequisite(browserMissing());
/** A second 1m candle starts at the next minute: waits for one may take that long. */
const NEXT_MINUTE_MS = 90_000;

describe.skipIf(services.skip || skipBrowser)(
  'the chart page on a fresh start, in Chromium',
  () => {
    let platform: Platform;
    let browser: Browser;
    let url: string;
    let producer: ServiceProcess | undefined;

    beforeAll(async () => {
      platform = await startPlatform('chart-fresh', {
        postgresUrl: services.get('postgres').url,
        redisUrl: services.get('redis').url,
        symbols: 'BTC-USD,ETH-USD',
      });
      url = await platform.startDatastore();
      browser = await launchChromium();
      await mkdir(ARTIFACTS, { recursive: true });
    });

    afterAll(async () => {
      await browser?.close();
      await platform?.stop();
    });

    /** Live synthetic trades from now on, started once (the first test opens the page before). */
    function liveTrades(): void {
      producer ??= platform.start('producer', { SYNTHETIC_RATE: '20', SYNTHETIC_SEED: '12' });
    }

    /** `bypassCSP` only so that `until` may evaluate text (the page's CSP bans eval). */
    async function openChart(
      viewport: { width: number; height: number },
      query = 'symbol=BTC-USD&interval=1',
    ): Promise<Page> {
      const page = await browser.newPage({ viewport, bypassCSP: true });
      await page.goto(`${url}/?${query}`);
      await until(page, "d.loading === 'false' && d.connection === 'open'");
      return page;
    }

    /**
     * The few candles there are: framed in a range of normal bar width with room on their right,
     * drawn that way, and the line above the chart says so without covering the chart or legend.
     */
    async function expectFramedFewCandles(page: Page): Promise<void> {
      await until(page, "Number(d.barCount) > 0 && d.fewBars === 'true'", 60_000);
      const count = Number(await dataset(page, 'barCount'));
      const from = Number(await dataset(page, 'visibleFrom'));
      const to = Number(await dataset(page, 'visibleTo'));
      const spacing = Number(await dataset(page, 'barSpacing'));
      // At least 60 bar slots in view: one candle is not stretched over the width.
      expect(to - from).toBeGreaterThanOrEqual(60);
      // The newest candle has room on its right, and the oldest is in view.
      expect(to - (count - 1)).toBeGreaterThanOrEqual(3);
      expect(from).toBeLessThanOrEqual(0);
      expect(spacing).toBeGreaterThanOrEqual(4);
      expect(spacing).toBeLessThanOrEqual(16);

      // What is drawn agrees: narrow candles on the right half, not against the price axis.
      await expect
        .poll(async () => (await drawnCandles(page)).candles.length, { timeout: 10_000 })
        .toBeGreaterThan(0);
      const drawn = await drawnCandles(page);
      const newest = drawn.candles[drawn.candles.length - 1]!;
      expect(newest.right).toBeLessThanOrEqual(drawn.paneWidth - 2 * spacing);
      expect(drawn.candles[0]!.left).toBeGreaterThan(drawn.paneWidth / 2);
      for (const c of drawn.candles) expect(c.right - c.left).toBeLessThanOrEqual(spacing + 1);

      const note = page.locator('#few-bars');
      expect(await note.isVisible()).toBe(true);
      expect(await note.innerText()).toMatch(
        /^\d+ candles? so far, since \d\d:\d\d UTC\. Older history isn't stored yet; new candles are added as live trades arrive\.$/,
      );
      const noteBox = (await note.boundingBox())!;
      expect(apart(noteBox, (await page.locator('#legend').boundingBox())!)).toBe(true);
      expect(apart(noteBox, (await page.locator('#chart').boundingBox())!)).toBe(true);
      expect(apart(noteBox, (await page.locator('header').boundingBox())!)).toBe(true);
      // Nothing wider than the screen.
      const viewport = page.viewportSize()!;
      expect(noteBox.x + noteBox.width).toBeLessThanOrEqual(viewport.width);
      expect(
        Number(await page.evaluate('document.documentElement.scrollWidth')),
      ).toBeLessThanOrEqual(viewport.width);
      await expectLegendClearOfAxes(page);
    }

    it('from an empty store on a phone: says there are no candles yet, then frames the first live ones at a normal width with room on their right', async () => {
      const phone = await openChart(PHONE);
      const errors: string[] = [];
      phone.on('pageerror', (err) => errors.push(err.message));
      expect(await dataset(phone, 'barCount')).toBe('0');
      expect(await dataset(phone, 'fewBars')).toBe('true');
      expect(await phone.locator('#few-bars').innerText()).toBe(
        "No candles yet: waiting for the first live trades. Older history isn't stored yet.",
      );
      expect(await phone.locator('#message').isHidden()).toBe(true);
      await phone.screenshot({ path: join(ARTIFACTS, 'chart-fresh-empty.png') });

      liveTrades();
      await expectFramedFewCandles(phone);
      // The live candle moves.
      const updates = Number(await dataset(phone, 'updates'));
      await until(phone, `Number(d.updates) > ${updates + 2}`);
      await phone.screenshot({ path: join(ARTIFACTS, 'chart-fresh-phone.png') });
      expect(errors).toEqual([]);
      await phone.close();
    });

    it('on a desktop: the same, framed and said', async () => {
      liveTrades();
      const desktop = await openChart(DESKTOP);
      await expectFramedFewCandles(desktop);
      await desktop.screenshot({ path: join(ARTIFACTS, 'chart-fresh-desktop.png') });
      await desktop.close();
    });

    it('the legend follows the crosshair over the few candles: an older one under the mouse, the newest over empty space and after the mouse leaves', async () => {
      liveTrades();
      const phone = await openChart(PHONE);
      await until(phone, 'Number(d.barCount) >= 2', NEXT_MINUTE_MS);
      const newest = await dataset(phone, 'lastTime');
      expect(await dataset(phone, 'legendTime')).toBe(newest);
      await expect
        .poll(async () => (await drawnCandles(phone)).candles.length, { timeout: 10_000 })
        .toBeGreaterThanOrEqual(2);
      const drawn = await drawnCandles(phone);
      const oldest = drawn.candles[0]!;
      const box = (await phone.locator('#chart').boundingBox())!;
      const y = box.y + box.height * 0.5;
      await phone.mouse.move(box.x + (oldest.left + oldest.right) / 2, y);
      await until(phone, `d.legendTime === d.firstTime && d.legendTime !== '${newest}'`);
      await phone.screenshot({ path: join(ARTIFACTS, 'chart-fresh-crosshair.png') });
      // Over the empty slots left of the candles there is no bar: the legend shows the newest.
      await phone.mouse.move(box.x + oldest.left / 4, y);
      await until(phone, 'd.legendTime === d.lastTime');
      await phone.mouse.move(box.x + (oldest.left + oldest.right) / 2, y);
      await until(phone, 'd.legendTime === d.firstTime');
      await phone.mouse.move(5, 5);
      await until(phone, 'd.legendTime === d.lastTime');
      await phone.close();
    });

    it('switches interval and symbol with the note kept up to date, and says plainly that an unknown symbol is not there', async () => {
      liveTrades();
      const phone = await openChart(PHONE);
      await until(phone, 'Number(d.barCount) > 0');
      await phone.getByRole('button', { name: '5m', exact: true }).click();
      await until(phone, "d.resolution === '5' && Number(d.barCount) > 0 && d.fewBars === 'true'");
      expect(Number(await dataset(phone, 'firstTime')) % (5 * 60_000)).toBe(0);
      // The note counts the 5m candles now (one, or two once a 5-minute boundary has passed).
      const count = Number(await dataset(phone, 'barCount'));
      expect(await phone.locator('#few-bars').innerText()).toMatch(
        new RegExp(`^${String(count)} candles? so far, since`),
      );
      expect(new URL(phone.url()).searchParams.get('interval')).toBe('5');

      await phone.locator('#symbol').fill('ETH-USD');
      await phone.locator('#symbol').press('Enter');
      await until(
        phone,
        "d.symbol === 'ETH-USD' && Number(d.barCount) > 0 && d.fewBars === 'true'",
      );
      expect(await phone.locator('#legend').innerText()).toContain('ETH-USD · 5m');
      const bars = await dataset(phone, 'barCount');

      await phone.locator('#symbol').fill('DOGE-USD');
      await phone.locator('#symbol').press('Enter');
      await until(phone, "(d.notice ?? '') !== ''");
      expect(await phone.locator('#notice').innerText()).toContain(
        'DOGE-USD is not a symbol this platform has; try BTC-USD, ETH-USD',
      );
      // The chart and its note stay, live.
      expect(await dataset(phone, 'symbol')).toBe('ETH-USD');
      expect(await dataset(phone, 'barCount')).toBe(bars);
      expect(await phone.locator('#few-bars').isVisible()).toBe(true);
      const notice = (await phone.locator('#notice').boundingBox())!;
      for (const other of ['#few-bars', '#legend', '#chart', 'header'])
        expect(apart(notice, (await phone.locator(other).boundingBox())!), other).toBe(true);
      const updates = Number(await dataset(phone, 'updates'));
      await until(phone, `Number(d.updates) > ${updates + 1}`);
      await phone.screenshot({ path: join(ARTIFACTS, 'chart-fresh-unknown-symbol.png') });
      await phone.close();
    });

    it('VWAP switched on is drawn from the first candle and moves live; with every indicator on, nothing overlaps on a phone', async () => {
      liveTrades();
      const phone = await openChart(PHONE);
      await until(phone, 'Number(d.barCount) > 0');
      await phone.getByRole('button', { name: 'VWAP', exact: true }).click();
      await until(phone, "d.indicators === 'vwap' && d.vwapValue !== ''");
      const vwap = Number(await dataset(phone, 'vwapValue'));
      expect(vwap).toBeGreaterThan(0);
      await until(phone, `d.vwapValue !== '${String(vwap)}'`);
      expect(await phone.locator('#legend').innerText()).toContain('VWAP');

      for (const name of ['SMA 20', 'EMA 50', 'RSI 14'])
        await phone.getByRole('button', { name, exact: true }).click();
      await until(phone, "d.indicators === 'sma,ema,vwap,rsi'");
      // Too few candles for SMA 20 yet: a dash in the legend, no value.
      expect(await dataset(phone, 'smaValue')).toBe('');
      expect(await phone.locator('#legend').innerText()).toMatch(/SMA 20\s+–/);
      await expectLegendClearOfAxes(phone);
      const note = (await phone.locator('#few-bars').boundingBox())!;
      expect(apart(note, (await phone.locator('#legend').boundingBox())!)).toBe(true);
      expect(apart(note, (await phone.locator('header').boundingBox())!)).toBe(true);
      await phone.screenshot({ path: join(ARTIFACTS, 'chart-fresh-phone-indicators.png') });
      await phone.close();
    });
  },
);
