/**
 * Replay mode of the chart page as its user meets it (docs/CHART.md, "Replay mode"), in Debian's
 * Chromium, every service a process as `pnpm start` runs them: the broker, the fixed consumer,
 * the datastore and the simulator, over a database holding known trades (26 hours of BTC-USD, one
 * every 10 s, so every minute has a bar). A start picked by clicking a bar (and once by typing a
 * date) hides the future; step adds exactly one bar; play adds bars in time order, equal to the
 * stored /ohlcv bars of those times; pause holds; a faster speed is faster; an interval change
 * resubscribes; "Back to live" restores the live chart; two tabs replay independently; a phone
 * shows it all without overlap; without the simulator the notice says so. Screenshots go to
 * .artifacts/.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Bar, MarketSymbol, Tick } from '@candlestream/core';
import { floorBucket, HOUR_MS, MINUTE_MS } from '@candlestream/core';
import type { ServiceProcess } from '@candlestream/testkit';
import { needPrerequisite, needServices } from '@candlestream/testkit';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Platform } from './chart-testing.js';
import {
  apart,
  ARTIFACTS,
  browserMissing,
  chartBars,
  dataset,
  DESKTOP,
  launchChromium,
  startPlatform,
  storeTrades,
  until,
} from './chart-testing.js';

const services = needServices(['postgres', 'redis']);
const skipBrowser = needPrerequisite(browserMissing());

const BTC = 'BTC-USD' as MarketSymbol;
const TRADE_EVERY_MS = 10_000;
/** More than the day the page's first 1m load asks for, so nothing is missing (no backfill). */
const STORED_MS = 26 * HOUR_MS;
/** The phone the brief names (chart-testing's PHONE is shorter). */
const PHONE_TALL = { width: 390, height: 844 };
/** How long a paused replay must hold still. */
const PAUSE_HOLD_MS = 2_000;
/** Quiet this long, a paused page has received what was in flight (bars and status travel apart). */
const SETTLE_MS = 600;

/** One BTC-USD trade every TRADE_EVERY_MS over [from, to): known prices and sizes. */
function knownTrades(from: number, to: number): Tick[] {
  const ticks: Tick[] = [];
  for (let ts = from, i = 0; ts < to; ts += TRADE_EVERY_MS, i++) {
    ticks.push({
      v: 1,
      symbol: BTC,
      ts,
      price: Math.round((30_000 + 40 * Math.sin(i / 29) + (i % 17)) * 100) / 100,
      size: (1 + (i % 9)) / 10,
      side: i % 2 === 0 ? 'buy' : 'sell',
      id: `known-${String(i)}`,
      source: 'synthetic',
    });
  }
  return ticks;
}

/** The datetime-local value (UTC, to the minute) the page reads a typed start from. */
const utcInput = (ms: number): string => new Date(ms).toISOString().slice(0, 16);

describe.skipIf(services.skip || skipBrowser)(
  'replay mode of the chart page, every service a process, in Chromium',
  () => {
    let platform: Platform;
    let browser: Browser;
    let url: string;
    let simulator: ServiceProcess;
    const processes = new Map<string, ServiceProcess>();
    /** The newest stored minute's open (the live chart's last bar). */
    let newest: number;

    beforeAll(async () => {
      platform = await startPlatform('chart-replay', {
        postgresUrl: services.get('postgres').url,
        redisUrl: services.get('redis').url,
        symbols: 'BTC-USD',
      });
      const end = floorBucket(Date.now(), '1m');
      newest = end - MINUTE_MS;
      await storeTrades(platform, knownTrades(end - STORED_MS, end));
      simulator = platform.start('simulator', { LOG_LEVEL: 'info' });
      processes.set('simulator', simulator);
      await simulator.waitForLine(
        (l) => typeof l['to'] === 'string' && /healthy/.test(l['to']),
        60_000,
      );
      url = await platform.startDatastore({ LOG_LEVEL: 'info' });
      browser = await launchChromium();
      await mkdir(ARTIFACTS, { recursive: true });
    }, 180_000);

    // A failure says what the simulator did: the test only sees the page's side.
    afterEach((context) => {
      if (context.task.result?.state !== 'fail') return;
      for (const [name, p] of processes) {
        const tail = p.lines
          .slice(-12)
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

    /** The live 1m chart, loaded; `bypassCSP` only so that `until` may evaluate text in it. */
    async function openChart(
      viewport = DESKTOP,
      query = '',
    ): Promise<{ page: Page; errors: string[] }> {
      const page = await browser.newPage({ viewport, bypassCSP: true });
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(`${url}/?symbol=BTC-USD&interval=1${query}`);
      await until(page, `Number(d.lastTime) === ${String(newest)} && Number(d.barCount) > 1000`);
      return { page, errors };
    }

    async function enterReplay(page: Page): Promise<void> {
      await page.locator('#replay-toggle').click();
      await until(page, "d.replay === 'picking'");
      expect(await page.locator('#replay-status').innerText()).toBe(
        'Click a bar or type a date to start the replay',
      );
    }

    /**
     * Clicks the bar at `fraction` of the chart's width and returns its open time: the legend
     * names the bar under the crosshair, so the mouse goes there first.
     */
    async function clickBar(page: Page, fraction: number): Promise<number> {
      const box = (await page.locator('#chart').boundingBox())!;
      const x = box.x + box.width * fraction;
      const y = box.y + box.height * 0.45;
      await page.mouse.move(x, y);
      await until(page, `d.legendTime !== '' && d.legendTime !== d.lastTime`);
      const time = Number(await dataset(page, 'legendTime'));
      await page.mouse.click(x, y);
      return time;
    }

    async function typeStart(page: Page, start: number): Promise<void> {
      await page.locator('#replay-start').fill(utcInput(start));
      await page.locator('#replay-pick button[type=submit]').click();
    }

    /** Waits until the page has taken no bar for SETTLE_MS (what was in flight has arrived). */
    async function settled(page: Page): Promise<void> {
      let before = await dataset(page, 'updates');
      for (let i = 0; i < 50; i++) {
        await page.waitForTimeout(SETTLE_MS);
        const now = await dataset(page, 'updates');
        if (now === before) return;
        before = now;
      }
      throw new Error('the page kept taking bars');
    }

    /** The stored bars of [from, to) as /ohlcv answers them. */
    async function storedBars(interval: string, from: number, to: number): Promise<Bar[]> {
      const query = new URLSearchParams({
        symbol: 'BTC-USD',
        interval,
        startDate: String(from),
        endDate: String(to),
      });
      const response = await fetch(`${url}/ohlcv?${query.toString()}`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { bars: (Omit<Bar, 'time'> & { time: string })[] };
      return body.bars.map((b) => ({ ...b, time: Date.parse(b.time) }));
    }

    function expectSameBars(replayed: Bar[], stored: Bar[]): void {
      expect(replayed.map((b) => b.time)).toEqual(stored.map((b) => b.time));
      for (const [i, bar] of replayed.entries()) {
        const want = stored[i]!;
        expect({ ...bar, volume: 0 }, new Date(bar.time).toISOString()).toEqual({
          ...want,
          volume: 0,
        });
        expect(bar.volume).toBeCloseTo(want.volume, 9);
      }
    }

    function expectAscending(bars: Bar[], stepMs: number): void {
      for (let i = 1; i < bars.length; i++) expect(bars[i]!.time - bars[i - 1]!.time).toBe(stepMs);
    }

    const simTime = async (page: Page): Promise<number> =>
      Number(await dataset(page, 'replaySimTime'));
    const barCount = async (page: Page): Promise<number> => Number(await dataset(page, 'barCount'));

    it('a clicked bar starts a paused replay with the future hidden; step, play, pause, speed and back to live', async () => {
      const { page, errors } = await openChart();
      await enterReplay(page);
      await page.screenshot({ path: join(ARTIFACTS, 'chart-replay-picking.png') });
      const start = await clickBar(page, 0.6);
      // Far enough back to have a future to hide, near enough to replay some of it quickly.
      expect(newest - start).toBeGreaterThan(20 * MINUTE_MS);
      expect(newest - start).toBeLessThan(6 * HOUR_MS);
      await until(page, "d.replay === 'paused'");
      expect(Number(await dataset(page, 'replayFrom'))).toBe(start);
      expect(await dataset(page, 'replaySession')).not.toBe('');

      // The future is hidden: nothing at or after the start, the bar before it last.
      const past = await chartBars(page);
      expect(past.length).toBeGreaterThan(100);
      expect(past.every((b) => b.time < start)).toBe(true);
      expect(past.at(-1)!.time).toBe(start - MINUTE_MS);
      expect(await page.locator('#replay-status').innerText()).toMatch(
        /^paused · \d{4}-\d\d-\d\d \d\d:\d\d UTC · \d+%$/,
      );
      await page.screenshot({ path: join(ARTIFACTS, 'chart-replay-paused.png') });

      // Step at the start: exactly the start's bar is added, then it stays paused.
      const n = past.length;
      await page.locator('#replay-step').click();
      await until(page, `Number(d.barCount) === ${String(n + 1)}`);
      await until(page, `Number(d.replaySimTime) >= ${String(start + MINUTE_MS)}`);
      await settled(page);
      expect(await barCount(page)).toBe(n + 1);
      expect((await chartBars(page)).at(-1)!.time).toBe(start);
      expect(await dataset(page, 'replay')).toBe('paused');

      // Play at 60x (a 1m bar a second): bars are added in time order.
      await page.locator('#replay-speed').selectOption('60');
      await until(page, "d.replaySpeed === '60'");
      await page.locator('#replay-play').click();
      await until(page, "d.replay === 'playing'");
      expect(await page.locator('#replay-play').innerText()).toBe('Pause');
      await until(page, `Number(d.barCount) >= ${String(n + 6)}`, 20_000);
      await page.screenshot({ path: join(ARTIFACTS, 'chart-replay-playing.png') });
      const playing = await chartBars(page);
      expectAscending(playing, MINUTE_MS);

      // Pause: nothing changes for two seconds.
      await page.locator('#replay-play').click();
      await until(page, "d.replay === 'paused'");
      await settled(page);
      const held = JSON.stringify(await chartBars(page));
      const heldAt = await simTime(page);
      await page.waitForTimeout(PAUSE_HOLD_MS);
      expect(JSON.stringify(await chartBars(page))).toBe(held);
      expect(await simTime(page)).toBe(heldAt);
      expect(await page.locator('#replay-play').innerText()).toBe('Play');

      // Paused mid-bar, a step completes the forming bar; the next adds exactly one.
      await page.locator('#replay-step').click();
      await until(
        page,
        `Number(d.replaySimTime) > ${String(heldAt)} && Number(d.replaySimTime) % ${String(MINUTE_MS)} === 0`,
      );
      await settled(page);
      const c = await barCount(page);
      const atBoundary = await simTime(page);
      await page.locator('#replay-step').click();
      await until(page, `Number(d.replaySimTime) >= ${String(atBoundary + MINUTE_MS)}`);
      await settled(page);
      expect(await barCount(page)).toBe(c + 1);
      expect((await chartBars(page)).at(-1)!.time).toBe(atBoundary);

      // 1000x: twenty bars within a wait shorter than the twenty seconds they take at 60x.
      await page.locator('#replay-speed').selectOption('1000');
      await until(page, "d.replaySpeed === '1000'");
      const fastFrom = await barCount(page);
      await page.locator('#replay-play').click();
      await until(page, `Number(d.barCount) >= ${String(fastFrom + 20)}`, 15_000);
      await page.locator('#replay-play').click();
      await until(page, "d.replay === 'paused'");
      await settled(page);

      // The replay built the stored bars: every complete one equals /ohlcv's of its time.
      const complete = floorBucket(await simTime(page), '1m');
      const replayed = (await chartBars(page)).filter((b) => b.time >= start && b.time < complete);
      expect(replayed.length).toBeGreaterThanOrEqual(25);
      expectSameBars(replayed, await storedBars('1m', start, complete));
      // And the history before the start is the stored one too.
      expectSameBars(past.slice(-30), await storedBars('1m', start - 30 * MINUTE_MS, start));

      // Back to live: the live chart as it loads, with the bars after the start again.
      await page.locator('#replay-exit').click();
      await until(page, `d.replay === 'off' && Number(d.lastTime) === ${String(newest)}`);
      expect(await page.locator('#replay').isHidden()).toBe(true);
      const live = await chartBars(page);
      expect(live.length).toBeGreaterThan(1_000);
      expectSameBars(
        live.filter((b) => b.time >= start && b.time < start + 10 * MINUTE_MS),
        await storedBars('1m', start, start + 10 * MINUTE_MS),
      );
      await page.screenshot({ path: join(ARTIFACTS, 'chart-replay-live-again.png') });
      expect(errors).toEqual([]);
      await page.close();
    });

    it('a typed date starts a replay; indicators follow it; switching interval resubscribes, the future still hidden', async () => {
      const { page, errors } = await openChart(DESKTOP, '&indicators=sma');
      await enterReplay(page);
      // Not on a 5m boundary: at 5m, the bar holding the start shows the replayed trades only.
      const start = floorBucket(newest, '5m') - 3 * HOUR_MS + 2 * MINUTE_MS;
      await typeStart(page, start);
      await until(page, "d.replay === 'paused'");
      expect(Number(await dataset(page, 'replayFrom'))).toBe(start);
      expect((await chartBars(page)).at(-1)!.time).toBe(start - MINUTE_MS);
      await page.locator('#replay-step').click();
      await until(page, `Number(d.replaySimTime) >= ${String(start + MINUTE_MS)}`);
      await settled(page);
      const [minute] = await storedBars('1m', start, start + MINUTE_MS);
      expectSameBars((await chartBars(page)).slice(-1), [minute!]);
      // SMA 20 of the close takes the replayed bar as its newest input.
      const closes = (await chartBars(page)).slice(-20).map((b) => b.close);
      expect(Number(await dataset(page, 'smaValue'))).toBeCloseTo(
        closes.reduce((sum, c) => sum + c, 0) / 20,
        6,
      );

      await page.getByRole('button', { name: '5m', exact: true }).click();
      const bucket = floorBucket(start, '5m');
      await until(page, `d.resolution === '5' && Number(d.lastTime) === ${String(bucket)}`);
      await settled(page);
      const fives = await chartBars(page);
      expect(fives.every((b) => b.time % (5 * MINUTE_MS) === 0 && b.time <= bucket)).toBe(true);
      // The start's 5m bar is the one replayed minute so far, not the stored five.
      const forming = fives.at(-1)!;
      expect(forming).toMatchObject({ time: bucket, open: minute!.open, close: minute!.close });
      expect(forming.volume).toBeCloseTo(minute!.volume, 9);
      expectSameBars(
        fives.slice(-21, -1),
        await storedBars('5m', bucket - 20 * 5 * MINUTE_MS, bucket),
      );
      expect(await dataset(page, 'replay')).toBe('paused');

      // A step at 5m completes the start's bar; the next adds exactly one, the stored one.
      await page.locator('#replay-step').click();
      await until(page, `Number(d.replaySimTime) >= ${String(bucket + 5 * MINUTE_MS)}`);
      await settled(page);
      const count = await barCount(page);
      await page.locator('#replay-step').click();
      await until(page, `Number(d.replaySimTime) >= ${String(bucket + 10 * MINUTE_MS)}`);
      await settled(page);
      expect(await barCount(page)).toBe(count + 1);
      expectSameBars(
        (await chartBars(page)).slice(-1),
        await storedBars('5m', bucket + 5 * MINUTE_MS, bucket + 10 * MINUTE_MS),
      );

      await page.locator('#replay-exit').click();
      await until(page, `d.replay === 'off' && d.resolution === '5' && Number(d.barCount) > 250`);
      expect(errors).toEqual([]);
      await page.close();
    });

    it('two tabs replay independently: pausing one leaves the other playing', async () => {
      const a = await openChart();
      const b = await openChart();
      await enterReplay(a.page);
      await clickBar(a.page, 0.5);
      await enterReplay(b.page);
      await typeStart(b.page, floorBucket(newest, '1m') - 2 * HOUR_MS);
      await until(a.page, "d.replay === 'paused'");
      await until(b.page, "d.replay === 'paused'");
      expect(await dataset(a.page, 'replaySession')).not.toBe(
        await dataset(b.page, 'replaySession'),
      );
      for (const { page } of [a, b]) {
        await page.locator('#replay-speed').selectOption('100');
        await until(page, "d.replaySpeed === '100'");
        await page.locator('#replay-play').click();
        await until(page, "d.replay === 'playing'");
      }
      const before = { a: await barCount(a.page), b: await barCount(b.page) };
      await until(a.page, `Number(d.barCount) >= ${String(before.a + 2)}`, 15_000);
      await until(b.page, `Number(d.barCount) >= ${String(before.b + 2)}`, 15_000);

      await a.page.locator('#replay-play').click();
      await until(a.page, "d.replay === 'paused'");
      await settled(a.page);
      const held = JSON.stringify(await chartBars(a.page));
      const other = await barCount(b.page);
      await a.page.waitForTimeout(PAUSE_HOLD_MS);
      expect(JSON.stringify(await chartBars(a.page))).toBe(held);
      expect(await dataset(b.page, 'replay')).toBe('playing');
      expect(await barCount(b.page)).toBeGreaterThan(other);
      expectAscending(await chartBars(b.page), MINUTE_MS);

      for (const { page, errors } of [a, b]) {
        await page.locator('#replay-exit').click();
        await until(page, "d.replay === 'off'");
        expect(errors).toEqual([]);
        await page.close();
      }
    });

    it('on a phone the replay bar sits under the header, wraps, and covers nothing', async () => {
      const { page, errors } = await openChart(PHONE_TALL);
      await enterReplay(page);
      await page.screenshot({ path: join(ARTIFACTS, 'chart-replay-phone-picking.png') });
      await typeStart(page, floorBucket(newest, '1m') - HOUR_MS);
      await until(page, "d.replay === 'paused'");
      await page.locator('#replay-step').click();
      await until(page, `Number(d.replaySimTime) > Number(d.replayFrom)`);
      await page.screenshot({ path: join(ARTIFACTS, 'chart-replay-phone-paused.png') });
      const bar = (await page.locator('#replay').boundingBox())!;
      for (const other of ['header', '#chart', '#legend'])
        expect(apart(bar, (await page.locator(other).boundingBox())!), other).toBe(true);
      for (const control of [
        '#replay-play',
        '#replay-step',
        '#replay-speed',
        '#replay-exit',
        '#replay-status',
      ]) {
        const box = (await page.locator(control).boundingBox())!;
        expect(box.x, control).toBeGreaterThanOrEqual(0);
        expect(box.x + box.width, control).toBeLessThanOrEqual(PHONE_TALL.width);
      }
      expect(
        Number(await page.evaluate('document.documentElement.scrollWidth')),
      ).toBeLessThanOrEqual(PHONE_TALL.width);
      // The chart keeps most of the screen.
      expect((await page.locator('#chart').boundingBox())!.height).toBeGreaterThan(400);
      await page.locator('#replay-exit').click();
      await until(page, "d.replay === 'off'");
      expect(errors).toEqual([]);
      await page.close();
    });

    it('played to its end it says ended, keeps the replayed bars and takes no more controls', async () => {
      const { page, errors } = await openChart();
      await enterReplay(page);
      const start = newest - 4 * MINUTE_MS;
      await page.locator('#replay-speed').selectOption('max');
      await typeStart(page, start);
      await until(page, "d.replay === 'paused' && d.replaySpeed === 'max'");
      await page.locator('#replay-play').click();
      await until(page, "d.replay === 'ended'", 30_000);
      await settled(page);
      expect(await page.locator('#replay-status').innerText()).toMatch(
        /^ended · .* · 100% \(the end of the range\)$/,
      );
      expect(await page.locator('#replay-play').isDisabled()).toBe(true);
      expect(await page.locator('#replay-step').isDisabled()).toBe(true);
      expectSameBars(
        (await chartBars(page)).filter((b) => b.time >= start),
        await storedBars('1m', start, newest + MINUTE_MS),
      );
      await page.locator('#replay-exit').click();
      await until(page, `d.replay === 'off' && Number(d.lastTime) === ${String(newest)}`);
      expect(errors).toEqual([]);
      await page.close();
    });

    // Last: it stops the simulator.
    it('without the simulator, starting a replay says so in the notice and the chart stays live', async () => {
      await simulator.kill();
      const { page, errors } = await openChart();
      await enterReplay(page);
      await clickBar(page, 0.6);
      await until(page, "d.notice !== ''", 20_000);
      expect(await dataset(page, 'notice')).toMatch(/simulator/i);
      expect(await page.locator('#notice').isVisible()).toBe(true);
      await until(page, "d.replay === 'picking'");
      expect(await barCount(page)).toBeGreaterThan(1_000);
      expect(Number(await dataset(page, 'lastTime'))).toBe(newest);
      await page.screenshot({ path: join(ARTIFACTS, 'chart-replay-no-simulator.png') });
      expect(errors).toEqual([]);
      await page.close();
    });
  },
);
