/**
 * History on demand as the chart page's user meets it (issue 15, docs/BACKFILLS.md): a fresh
 * start, an empty database, every service its own process as `pnpm start` runs them (broker,
 * fixed consumer, dynamic consumer, coordinator, synthetic producer live and backfilling,
 * datastore). The page opens on at least a day of 1m history within 10 s of its first load (its
 * first /ohlcv request misses, the datastore asks for a backfill, the page says "Loading
 * history…" and fills in on /stream's `history` message); scrolling back past the loaded bars
 * shows "Loading history…" again, then older bars, with the bars in view kept where they were.
 * Nothing is faked: the bars come from the synthetic source through the backfill pipeline.
 * Screenshots are kept in .artifacts/.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DAY_MS, MINUTE_MS } from '@candlestream/core';
import type { ServiceProcess } from '@candlestream/testkit';
import { needPrerequisite, needServices } from '@candlestream/testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from './chart-testing.js';
import {
  apart,
  ARTIFACTS,
  browserMissing,
  dataset,
  DESKTOP,
  launchChromium,
  PHONE,
  startPlatform,
  until,
} from './chart-testing.js';

const services = needServices(['postgres', 'redis']);
const skipBrowser = needPrerequisite(browserMissing());
/** Issue 15: a fresh start shows a full chart within this long of the first page load. */
const FULL_CHART_WITHIN_MS = 10_000;
/** A backfill of what a scroll back asks for (300 minutes) through every service. */
const OLDER_BARS_WITHIN_MS = 30_000;

/**
 * Every text the history line showed, in order, kept by the page itself (a MutationObserver on
 * <body>'s data-history-note), since a quick backfill shows "Loading history…" only briefly.
 */
const RECORD_HISTORY_NOTES = `
  window.__historyNotes = [];
  new MutationObserver(() => {
    const note = document.body.dataset.historyNote ?? '';
    const seen = window.__historyNotes;
    if (note !== '' && seen[seen.length - 1] !== note) seen.push(note);
  }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-history-note'] });
`;

const historyNotes = (page: Page): Promise<string[]> =>
  page.evaluate<string[]>('window.__historyNotes');

describe.skipIf(services.skip || skipBrowser)(
  'history on demand in the chart page, every service a process, in Chromium',
  () => {
    let platform: Platform;
    let browser: Browser;
    let url: string;
    const processes = new Map<string, ServiceProcess>();

    beforeAll(async () => {
      platform = await startPlatform('chart-history', {
        postgresUrl: services.get('postgres').url,
        redisUrl: services.get('redis').url,
        symbols: 'BTC-USD,ETH-USD',
      });
      const healthy = (p: ServiceProcess) =>
        p.waitForLine((l) => typeof l['to'] === 'string' && /healthy|live/.test(l['to']), 60_000);
      const extra = { BACKFILL_TOPIC_TTL_MS: '5000', SYNTHETIC_RATE: '5', LOG_LEVEL: 'info' };
      for (const name of ['dynamic-consumer', 'coordinator']) {
        const p = platform.start(name, extra);
        processes.set(name, p);
        await healthy(p);
      }
      processes.set('producer', platform.start('producer', extra));
      url = await platform.startDatastore(extra);
      browser = await launchChromium();
      await mkdir(ARTIFACTS, { recursive: true });
    }, 180_000);

    // A failure says which process did what: the test only sees the page's side.
    afterEach((context) => {
      if (context.task.result?.state !== 'fail') return;
      for (const [name, p] of processes) {
        const tail = p.lines
          .slice(-8)
          .map((l) => JSON.stringify(l))
          .join('\n');
        process.stderr.write(
          `--- ${name} (exit ${String(p.child.exitCode)})\n${p.stderr().slice(-2_000)}\n${tail}\n`,
        );
      }
    });

    afterAll(async () => {
      await browser?.close();
      await platform?.stop();
    });

    /** `bypassCSP` only so that `until` and the note recorder may run text in the page. */
    async function newPage(viewport: { width: number; height: number }): Promise<Page> {
      const page = await browser.newPage({ viewport, bypassCSP: true });
      await page.addInitScript(RECORD_HISTORY_NOTES);
      return page;
    }

    it('a fresh start opens on at least a day of 1m history within 10 s of the first page load', async () => {
      const page = await newPage(DESKTOP);
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      const opened = Date.now();
      await page.goto(`${url}/?symbol=BTC-USD&interval=1`);
      const left = FULL_CHART_WITHIN_MS - (Date.now() - opened);
      await until(
        page,
        `d.loadingHistory === 'false' && Number(d.lastTime) - Number(d.firstTime) >= ${String(DAY_MS - 2 * MINUTE_MS)}`,
        Math.max(left, 1),
      );
      const tookMs = Date.now() - opened;
      await page.screenshot({ path: join(ARTIFACTS, 'chart-history-fresh.png') });
      expect(tookMs).toBeLessThan(FULL_CHART_WITHIN_MS);
      // A day of 1m bars: the synthetic source trades every minute.
      expect(Number(await dataset(page, 'barCount'))).toBeGreaterThanOrEqual(1_430);
      // The empty store was filled by a backfill the page waited for and said so.
      expect((await historyNotes(page)).some((n) => n.startsWith('Loading history…'))).toBe(true);
      expect(Number(await dataset(page, 'historyReloads'))).toBeGreaterThanOrEqual(1);
      expect(await page.locator('#history').isHidden()).toBe(true);
      expect(await dataset(page, 'fewBars')).toBe('false');
      // Live goes on after the reload.
      await until(page, "d.connection === 'open'");
      const updates = Number(await dataset(page, 'updates'));
      await until(page, `Number(d.updates) > ${String(updates + 1)}`);
      expect(Date.now() - Number(await dataset(page, 'lastTime'))).toBeLessThan(2 * MINUTE_MS);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('scrolling back past the loaded bars shows "Loading history…", then older bars, the bars in view kept', async () => {
      const page = await newPage(DESKTOP);
      await page.goto(`${url}/?symbol=BTC-USD&interval=1`);
      await until(page, "d.loadingHistory === 'false' && Number(d.barCount) >= 1430", 30_000);
      const firstBefore = Number(await dataset(page, 'firstTime'));
      const reloadsBefore = Number(await dataset(page, 'historyReloads'));
      const box = (await page.locator('#chart').boundingBox())!;
      // Drag the chart right (towards the past) until the page asks for bars it does not have.
      for (let i = 0; i < 40 && (await dataset(page, 'historyJobs')) === ''; i++) {
        if (Number(await dataset(page, 'historyReloads')) > reloadsBefore) break;
        await page.mouse.move(box.x + 40, box.y + box.height / 2);
        await page.mouse.down();
        await page.mouse.move(box.x + box.width - 120, box.y + box.height / 2, { steps: 6 });
        await page.mouse.up();
      }
      // While it loads (when the screenshot is quick enough to catch it): the line, over no chart.
      if ((await dataset(page, 'loadingHistory')) === 'true') {
        const line = (await page.locator('#history').boundingBox())!;
        expect(apart(line, (await page.locator('#chart').boundingBox())!)).toBe(true);
        await page.screenshot({ path: join(ARTIFACTS, 'chart-history-loading.png') });
      }
      await until(
        page,
        `d.loadingHistory === 'false' && Number(d.firstTime) < ${String(firstBefore)}`,
        OLDER_BARS_WITHIN_MS,
      );
      // This page opened on the day the first test stored: its loading line is the scroll back's.
      expect((await historyNotes(page)).some((n) => n.startsWith('Loading history…'))).toBe(true);
      // The older bars are the ones asked for: 300 minutes before the first loaded bar, no gap.
      expect(firstBefore - Number(await dataset(page, 'firstTime'))).toBeGreaterThanOrEqual(
        250 * MINUTE_MS,
      );
      // The reload kept what was on screen: the visible bars did not jump to the newest.
      const visibleTo = Number(await dataset(page, 'visibleToTime'));
      expect(visibleTo).toBeLessThan(firstBefore + 6 * 60 * MINUTE_MS);
      expect(await dataset(page, 'historyFailed')).toBe('false');
      await page.screenshot({ path: join(ARTIFACTS, 'chart-history-older.png') });
      await page.close();
    });

    it('on a phone the history line is readable and covers nothing', async () => {
      const page = await newPage(PHONE);
      // ETH-USD is still empty: its first load backfills a day too, with the line shown meanwhile.
      await page.goto(`${url}/?symbol=ETH-USD&interval=1`);
      await until(
        page,
        "d.loadingHistory === 'true' || (d.loadingHistory === 'false' && Number(d.barCount) >= 1430)",
      );
      if ((await dataset(page, 'loadingHistory')) === 'true') {
        const line = page.locator('#history');
        const box = (await line.boundingBox())!;
        expect(box.x + box.width).toBeLessThanOrEqual(PHONE.width);
        for (const other of ['#legend', '#chart', 'header'])
          expect(apart(box, (await page.locator(other).boundingBox())!), other).toBe(true);
        expect(await line.innerText()).toMatch(/^Loading history…/);
        await page.screenshot({ path: join(ARTIFACTS, 'chart-history-phone-loading.png') });
      }
      await until(page, "d.loadingHistory === 'false' && Number(d.barCount) >= 1430", 30_000);
      expect((await historyNotes(page)).some((n) => n.startsWith('Loading history…'))).toBe(true);
      expect(
        Number(await page.evaluate('document.documentElement.scrollWidth')),
      ).toBeLessThanOrEqual(PHONE.width);
      await page.screenshot({ path: join(ARTIFACTS, 'chart-history-phone.png') });
      await page.close();
    });
  },
);
