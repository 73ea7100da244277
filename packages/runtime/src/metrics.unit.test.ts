import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';

describe('Metrics', () => {
  it('renders counters with labels, and reads collected gauges at every scrape', () => {
    const metrics = new Metrics('test-service');
    const counter = metrics.counter('things_total', 'things seen');
    counter.inc(2, { kind: 'a' });
    counter.inc(1, { kind: 'a' });
    let queued = 5;
    metrics.gauge('queued', 'things waiting', () => queued);
    expect(metrics.render()).toContain('candlestream_test_service_things_total{kind="a"} 3');
    expect(metrics.render()).toContain('candlestream_test_service_queued 5');
    queued = 0;
    expect(metrics.render()).toContain('candlestream_test_service_queued 0');
  });

  it('runs the scrape collectors before rendering, and answers in time when one hangs', async () => {
    const metrics = new Metrics('svc');
    const lag = metrics.gauge('lag', 'messages behind');
    let behind = 7;
    metrics.onScrape(() => {
      lag.set(behind, { partition: '0' });
      return Promise.resolve();
    });
    metrics.onScrape(() => new Promise<void>(() => undefined));
    expect(await metrics.scrape(50)).toContain('candlestream_svc_lag{partition="0"} 7');
    behind = 0;
    expect(await metrics.scrape(50)).toContain('candlestream_svc_lag{partition="0"} 0');
  });
});
