import { describe, expect, it } from 'vitest';
import { SimulatedClock } from '@candlestream/core';
import { Metrics } from './metrics.js';

describe('Metrics', () => {
  it('renders counters with labels, and reads collected gauges at every scrape', async () => {
    const metrics = new Metrics('test-service');
    const counter = metrics.counter('things_total', 'things seen', { labels: ['kind'] });
    counter.inc(2, { kind: 'a' });
    counter.inc(1, { kind: 'a' });
    let queued = 5;
    metrics.gauge('queued', 'things waiting', () => queued);
    expect(await metrics.render()).toContain('candlestream_test_service_things_total{kind="a"} 3');
    expect(await metrics.render()).toContain('candlestream_test_service_queued 5');
    queued = 0;
    expect(await metrics.render()).toContain('candlestream_test_service_queued 0');
  });

  it('runs the scrape collectors before rendering, and answers in time when one hangs', async () => {
    const clock = new SimulatedClock(0);
    const metrics = new Metrics('svc', { clock });
    const lag = metrics.gauge('lag', 'messages behind', undefined, { labels: ['partition'] });
    let behind = 7;
    metrics.onScrape(() => {
      lag.set(behind, { partition: '0' });
      return Promise.resolve();
    });
    metrics.onScrape(() => new Promise<void>(() => undefined));
    expect(await clock.runUntil(metrics.scrape(50))).toContain(
      'candlestream_svc_lag{partition="0"} 7',
    );
    behind = 0;
    expect(await clock.runUntil(metrics.scrape(50))).toContain(
      'candlestream_svc_lag{partition="0"} 0',
    );
  });

  it('serves Node process metrics and labelled histograms (prom-client)', async () => {
    const metrics = new Metrics('svc');
    const seconds = metrics.histogram('request_seconds', 'time to answer', [0.01, 0.1], {
      labels: ['route'],
    });
    seconds.observe(0.05, { route: '/ohlcv' });
    seconds.observe(0.5, { route: '/ohlcv' });
    const text = await metrics.scrape();
    expect(text).toContain('candlestream_svc_request_seconds_bucket{le="0.1",route="/ohlcv"} 1');
    expect(text).toContain('candlestream_svc_request_seconds_count{route="/ohlcv"} 2');
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(new Metrics('quiet', { processMetrics: false }).registry.getMetricsAsArray()).toEqual(
      [],
    );
  });
});
