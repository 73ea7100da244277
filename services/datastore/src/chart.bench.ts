/**
 * The chart page's first load in Chromium, every service a process (as chart-history.e2e runs
 * them): the time from navigation to a full day of 1m bars on screen when the store is empty (the
 * page's miss starts a backfill, which the page waits for), beside the same load once that day is
 * stored (the baseline: the same page and API with nothing to fetch).
 */
import { DAY_MS, MINUTE_MS } from '@candlestream/core';
import { needPrerequisite, needServices } from '@candlestream/testkit';
import type { Browser } from 'playwright-core';
import { afterAll, bench, describe } from 'vitest';
import type { Platform } from './chart-testing.js';
import { browserMissing, DESKTOP, launchChromium, startPlatform, until } from './chart-testing.js';

const services = needServices(['postgres', 'redis']);
const skipBrowser = needPrerequisite(browserMissing());
const ONCE = { iterations: 1, time: 0, warmupIterations: 0, warmupTime: 0 };
const LOADED_WITHIN_MS = 60_000;

const rows: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  process.stdout.write(`\nchart first-load figures (a day of 1m, BTC-USD):\n${rows.join('\n')}\n`);
});

describe.skipIf(services.skip || skipBrowser)('chart page first load', () => {
  let platform: Platform | undefined;
  let browser: Browser | undefined;
  let url = '';

  async function ready(): Promise<void> {
    if (platform) return;
    platform = await startPlatform('chart-bench', {
      postgresUrl: services.get('postgres').url,
      redisUrl: services.get('redis').url,
      symbols: 'BTC-USD,ETH-USD',
    });
    cleanups.push(() => platform!.stop());
    const healthy = (l: Record<string, unknown>) =>
      typeof l['to'] === 'string' && /healthy/.test(l['to']);
    for (const name of ['dynamic-consumer', 'coordinator']) {
      await platform.start(name).waitForLine(healthy, 60_000);
    }
    platform.start('producer');
    url = await platform.startDatastore({ RATE_LIMIT_PER_MINUTE: '1000000' });
    browser = await launchChromium();
    cleanups.push(() => browser!.close());
  }

  /** Milliseconds from navigation until the page shows a day of 1m bars and waits for nothing. */
  async function firstLoad(): Promise<number> {
    const page = await browser!.newPage({ viewport: DESKTOP, bypassCSP: true });
    const opened = performance.now();
    await page.goto(`${url}/?symbol=BTC-USD&interval=1`);
    await until(
      page,
      `d.loadingHistory === 'false' && Number(d.lastTime) - Number(d.firstTime) >= ${String(DAY_MS - 2 * MINUTE_MS)}`,
      LOADED_WITHIN_MS,
    );
    const ms = performance.now() - opened;
    await page.close();
    return ms;
  }

  bench(
    'empty store: history fetched on demand (backfill through every service)',
    async () => {
      await ready();
      const ms = await firstLoad();
      rows.push(
        `  ${'empty store, the page waits for its backfill'.padEnd(52)} ${ms.toFixed(0).padStart(6)} ms`,
      );
    },
    ONCE,
  );
  bench(
    'baseline: the same day already stored',
    async () => {
      await ready();
      const ms = await firstLoad();
      rows.push(
        `  ${'baseline: the day already stored'.padEnd(52)} ${ms.toFixed(0).padStart(6)} ms`,
      );
    },
    ONCE,
  );
});
