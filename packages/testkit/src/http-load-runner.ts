/**
 * The HTTP load generator's own process (http-load.ts spawns it): autocannon, so the requests are
 * made neither in the bench's event loop nor in the server's. argv[2] is the JSON of the runs;
 * every run's warm-up goes first, then all runs start together, and one JSON line reports them.
 * Latencies come from autocannon's `response` event (hrtime, fractional ms) rather than its
 * histogram, which keeps whole milliseconds only.
 */
import autocannon from 'autocannon';
import type { HttpLoadRun, RunnerReport, RunnerResult } from './http-load.js';

function warmUp(run: HttpLoadRun): Promise<Record<string, number>> {
  const amount = run.warmupRequests ?? 0;
  if (amount === 0) return Promise.resolve({});
  return autocannon({
    url: run.url,
    // One at a time: a warm-up fills caches and JIT; in parallel, cold requests could queue
    // behind each other past a server's bound (the datastore's 8 per client) and be refused.
    connections: 1,
    amount,
    headers: run.headers ?? {},
    timeout: (run.timeoutMs ?? 10_000) / 1_000,
  }).then((r) => {
    const statuses: Record<string, number> = {};
    for (const [code, { count }] of Object.entries(r.statusCodeStats ?? {}))
      statuses[code] = count ?? 0;
    return statuses;
  });
}

function measure(run: HttpLoadRun): Promise<RunnerResult> {
  return new Promise((resolve, reject) => {
    const responses: [number, number][] = [];
    const started = performance.now();
    const instance = autocannon(
      {
        url: run.url,
        connections: run.connections,
        ...(run.amount === undefined ? { duration: (run.durationMs ?? 1_000) / 1_000 } : {}),
        ...(run.amount === undefined ? {} : { amount: run.amount }),
        headers: run.headers ?? {},
        timeout: (run.timeoutMs ?? 10_000) / 1_000,
      },
      (err: unknown, result) => {
        if (err) {
          reject(err instanceof Error ? err : new Error(JSON.stringify(err)));
          return;
        }
        const seconds = (performance.now() - started) / 1_000;
        resolve({
          seconds,
          responses,
          errors: result.errors,
          timeouts: result.timeouts,
          warmupStatuses: {},
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      responses.push([statusCode, Math.round(responseTime * 1_000) / 1_000]);
    });
  });
}

async function main(): Promise<void> {
  const runs = JSON.parse(process.argv[2] ?? '[]') as HttpLoadRun[];
  const warmups: Record<string, number>[] = [];
  for (const run of runs) warmups.push(await warmUp(run));
  const results = await Promise.all(runs.map(measure));
  results.forEach((r, i) => (r.warmupStatuses = warmups[i] ?? {}));
  const report: RunnerReport = { msg: 'http-load', results };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
