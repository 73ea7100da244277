/**
 * Prometheus metrics on prom-client: one registry per service with the platform's counters,
 * gauges and histograms (labelled where declared) and Node's default process metrics.
 *
 * The thin classes below keep the services' calls small (`inc`, `set`, `observe`) and keep a
 * local copy of counter values, so a service can report its own totals (`get`) synchronously.
 */
import type { Clock, TimerHandle } from '@candlestream/core';
import { systemClock } from '@candlestream/core';
import client from 'prom-client';

export type Labels = Readonly<Record<string, string>>;

export interface MetricOptions {
  /** Label names this metric takes; prom-client wants them declared up front. */
  labels?: readonly string[];
}

const labelKey = (labels: Labels | undefined): string =>
  labels
    ? Object.keys(labels)
        .sort()
        .map((k) => `${k}=${labels[k]}`)
        .join(',')
    : '';

export class Counter {
  readonly #counter: client.Counter;
  readonly #values = new Map<string, number>();

  constructor(counter: client.Counter) {
    this.#counter = counter;
  }

  inc(by = 1, labels?: Labels): void {
    if (labels) this.#counter.inc(labels, by);
    else this.#counter.inc(by);
    const key = labelKey(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  /** The value this process counted, for `labels` (or the unlabelled series). */
  get(labels?: Labels): number {
    return this.#values.get(labelKey(labels)) ?? 0;
  }
}

export class Gauge {
  readonly #gauge: client.Gauge;

  constructor(gauge: client.Gauge) {
    this.#gauge = gauge;
  }

  set(value: number, labels?: Labels): void {
    if (labels) this.#gauge.set(labels, value);
    else this.#gauge.set(value);
  }
}

export class Histogram {
  readonly #histogram: client.Histogram;
  #count = 0;

  constructor(histogram: client.Histogram) {
    this.#histogram = histogram;
  }

  observe(value: number, labels?: Labels): void {
    if (labels) this.#histogram.observe(labels, value);
    else this.#histogram.observe(value);
    this.#count += 1;
  }

  /** Observations made in this process, all labels together. */
  get count(): number {
    return this.#count;
  }
}

/** Latency buckets in seconds, 1 ms to 10 s. */
export const LATENCY_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** How long a scrape waits for its asynchronous collectors before rendering what it has. */
export const SCRAPE_COLLECT_TIMEOUT_MS = 2_000;

export interface MetricsOptions {
  /** Node's default process metrics (CPU, memory, event loop lag, GC); default true. */
  processMetrics?: boolean;
  /** Times the scrape's wait for its collectors; SimulatedClock in tests. */
  clock?: Clock;
}

/** One registry per service; platform names get the `candlestream_<service>_` prefix. */
export class Metrics {
  readonly registry = new client.Registry();
  readonly #prefix: string;
  readonly #collectors: (() => Promise<void>)[] = [];
  readonly #clock: Clock;

  constructor(service: string, options: MetricsOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#prefix = `candlestream_${service.replace(/[^a-zA-Z0-9_]/g, '_')}_`;
    if (options.processMetrics ?? true) client.collectDefaultMetrics({ register: this.registry });
  }

  /** The `Content-Type` of what `scrape` returns. */
  get contentType(): string {
    return this.registry.contentType;
  }

  counter(name: string, help: string, options: MetricOptions = {}): Counter {
    return new Counter(
      new client.Counter({
        name: this.#prefix + name,
        help,
        labelNames: options.labels ?? [],
        registers: [this.registry],
      }),
    );
  }

  /** With `collect`, the value is read at every scrape instead of being set. */
  gauge(name: string, help: string, collect?: () => number, options: MetricOptions = {}): Gauge {
    return new Gauge(
      new client.Gauge({
        name: this.#prefix + name,
        help,
        labelNames: options.labels ?? [],
        registers: [this.registry],
        ...(collect
          ? {
              collect(this: client.Gauge) {
                this.set(collect());
              },
            }
          : {}),
      }),
    );
  }

  histogram(
    name: string,
    help: string,
    buckets: readonly number[] = LATENCY_BUCKETS_S,
    options: MetricOptions = {},
  ): Histogram {
    return new Histogram(
      new client.Histogram({
        name: this.#prefix + name,
        help,
        buckets: [...buckets],
        labelNames: options.labels ?? [],
        registers: [this.registry],
      }),
    );
  }

  /**
   * Registers work that sets gauges from elsewhere (another process's counters, the broker's
   * offsets) before every scrape. A collector that fails or is slow leaves its gauges as they
   * were: a scrape answers within SCRAPE_COLLECT_TIMEOUT_MS either way.
   */
  onScrape(collect: () => Promise<void>): void {
    this.#collectors.push(collect);
  }

  /** Runs the collectors, then renders: what `/metrics` answers. */
  async scrape(timeoutMs = SCRAPE_COLLECT_TIMEOUT_MS): Promise<string> {
    if (this.#collectors.length > 0) {
      let timer: TimerHandle | undefined;
      const collected = Promise.allSettled(this.#collectors.map((c) => c()));
      const timedOut = new Promise<void>(
        (resolve) => (timer = this.#clock.setTimeout(resolve, timeoutMs)),
      );
      await Promise.race([collected, timedOut]).finally(() => this.#clock.clearTimeout(timer));
    }
    return this.render();
  }

  /** The Prometheus text exposition of every metric, without running the scrape collectors. */
  render(): Promise<string> {
    return this.registry.metrics();
  }
}
