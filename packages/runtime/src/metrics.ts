/** Prometheus text exposition (format 0.0.4), enough for counters, gauges and histograms. */
export type Labels = Readonly<Record<string, string>>;

function labelText(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

interface Metric {
  render(): string[];
}

abstract class Series implements Metric {
  protected readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}

  get(labels?: Labels): number {
    return this.values.get(labelText(labels)) ?? 0;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [labels, value] of this.values) lines.push(`${this.name}${labels} ${value}`);
    return lines;
  }
}

export class Counter extends Series {
  inc(by = 1, labels?: Labels): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
}

export class Gauge extends Series {
  /** Read at every scrape, for a value that lives elsewhere (a buffer's length). */
  collect: (() => number) | undefined;

  set(value: number, labels?: Labels): void {
    this.values.set(labelText(labels), value);
  }

  override render(): string[] {
    if (this.collect) this.set(this.collect());
    return super.render();
  }
}

export class Histogram implements Metric {
  readonly #counts: number[];
  #sum = 0;
  #count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.#counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.#sum += value;
    this.#count += 1;
    for (let i = 0; i < this.buckets.length; i++)
      if (value <= this.buckets[i]!) this.#counts[i]! += 1;
  }

  get count(): number {
    return this.#count;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((le, i) =>
      lines.push(`${this.name}_bucket{le="${le}"} ${this.#counts[i]}`),
    );
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.#count}`);
    lines.push(`${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`);
    return lines;
  }
}

/** Latency buckets in seconds, 1 ms to 10 s. */
export const LATENCY_BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** How long a scrape waits for its asynchronous collectors before rendering what it has. */
export const SCRAPE_COLLECT_TIMEOUT_MS = 2_000;

/** One registry per service; names get the `candlestream_` prefix and the service label. */
export class Metrics {
  readonly #metrics: Metric[] = [];
  readonly #prefix: string;
  readonly #collectors: (() => Promise<void>)[] = [];

  constructor(service: string) {
    this.#prefix = `candlestream_${service.replace(/[^a-zA-Z0-9_]/g, '_')}_`;
  }

  counter(name: string, help: string): Counter {
    return this.#add(new Counter(this.#prefix + name, help, 'counter'));
  }

  /** With `collect`, the value is read at every scrape instead of being set. */
  gauge(name: string, help: string, collect?: () => number): Gauge {
    const gauge = this.#add(new Gauge(this.#prefix + name, help, 'gauge'));
    gauge.collect = collect;
    return gauge;
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS_S): Histogram {
    return this.#add(new Histogram(this.#prefix + name, help, buckets));
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
      let timer: NodeJS.Timeout | undefined;
      const collected = Promise.allSettled(this.#collectors.map((c) => c()));
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([collected, timedOut]).finally(() => clearTimeout(timer));
    }
    return this.render();
  }

  render(): string {
    return this.#metrics.flatMap((m) => m.render()).join('\n') + '\n';
  }

  #add<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }
}
