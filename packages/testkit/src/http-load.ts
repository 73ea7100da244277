/**
 * HTTP load for benches, generated in a process of its own (http-load-runner.ts, autocannon):
 * never in the bench's event loop, where the requests would compete with the bench's own work,
 * nor in the server's. Each run is a closed loop: `connections` keep-alive connections, each
 * sending its next request when the last answer arrived, for `durationMs` or `amount` requests.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnService } from './processes.js';
import { percentile } from './wait.js';

export interface HttpLoadRun {
  url: string;
  /** Concurrent connections, each with one request in flight (closed loop). */
  connections: number;
  /** How long to keep the load up; ignored when `amount` is set. Default 1 s. */
  durationMs?: number;
  /** Exactly this many requests in all (spread over the connections), then stop. */
  amount?: number;
  /** Sent with every request (an `x-forwarded-for` makes the run another client). */
  headers?: Record<string, string>;
  /** Requests made one at a time (and not measured) before the measured run. Default 0. */
  warmupRequests?: number;
  /** A request with no answer after this long counts as a timeout. Default 10 s. */
  timeoutMs?: number;
  /** The status every answer must have (a revalidation's is 304). Default 200. */
  expectStatus?: number;
}

/** What the runner process reports for one run (the wire format between the two files). */
export interface RunnerResult {
  seconds: number;
  /** [status, latency ms] of every answer, in arrival order. */
  responses: [number, number][];
  /** Connection errors, timeouts included (autocannon's count). */
  errors: number;
  timeouts: number;
  warmupStatuses: Record<string, number>;
}

export interface RunnerReport {
  msg: 'http-load';
  results: RunnerResult[];
}

export interface HttpLoadResult {
  /** Answers received during the measured run. */
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  /** Answers by status code. */
  statuses: Map<number, number>;
  errors: number;
  timeouts: number;
  /** Latency of every answer, ascending, whatever its status. */
  latenciesMs: number[];
  /** Latency of the answers of the expected status (200), ascending; p50Ms, p99Ms and maxMs are over these. */
  okLatenciesMs: number[];
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  warmupStatuses: Map<number, number>;
}

const RUNNER = fileURLToPath(
  new URL(`./http-load-runner${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);
/** Room for the runner's start-up and warm-up beyond the runs' own durations. */
const RUNNER_SLACK_MS = 120_000;

function summarise(raw: RunnerResult, expected: number): HttpLoadResult {
  const statuses = new Map<number, number>();
  const all: number[] = [];
  const ok: number[] = [];
  for (const [status, ms] of raw.responses) {
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    all.push(ms);
    if (status === expected) ok.push(ms);
  }
  all.sort((a, b) => a - b);
  ok.sort((a, b) => a - b);
  return {
    requests: raw.responses.length,
    seconds: raw.seconds,
    requestsPerSecond: raw.responses.length / raw.seconds,
    statuses,
    errors: raw.errors,
    timeouts: raw.timeouts,
    latenciesMs: all,
    okLatenciesMs: ok,
    p50Ms: percentile(ok, 50),
    p99Ms: percentile(ok, 99),
    maxMs: ok[ok.length - 1] ?? Number.NaN,
    warmupStatuses: new Map(Object.entries(raw.warmupStatuses).map(([k, v]) => [Number(k), v])),
  };
}

/** Runs `runs` at the same time from one load process; one result per run, in order. */
export async function runHttpLoad(runs: readonly HttpLoadRun[]): Promise<HttpLoadResult[]> {
  const longest = Math.max(...runs.map((r) => (r.amount === undefined ? (r.durationMs ?? 0) : 0)));
  const timeouts = Math.max(...runs.map((r) => r.timeoutMs ?? 10_000));
  const runner = spawnService(RUNNER, {}, [JSON.stringify(runs)]);
  try {
    const line = await runner.waitForLine(
      (l) => l['msg'] === 'http-load',
      longest + timeouts + RUNNER_SLACK_MS,
    );
    return (line as unknown as RunnerReport).results.map((raw, i) =>
      summarise(raw, runs[i]?.expectStatus ?? 200),
    );
  } finally {
    await runner.kill();
  }
}

/** `statuses` as `980×200 20×429`. */
export function formatStatuses(statuses: ReadonlyMap<number, number>): string {
  return [...statuses].map(([status, n]) => `${n}×${status}`).join(' ') || 'none';
}

/** Throws unless every answer (warm-up included) had the expected status and no request failed. */
export function expectAllOk(label: string, result: HttpLoadResult, expected = 200): void {
  const bad = [...result.statuses, ...result.warmupStatuses].filter(([s]) => s !== expected);
  if (bad.length > 0 || result.errors > 0 || result.requests === 0) {
    throw new Error(
      `${label}: answers ${formatStatuses(result.statuses)} (warm-up ${formatStatuses(result.warmupStatuses)}), ${result.errors} errors, ${result.timeouts} timeouts`,
    );
  }
}

/**
 * One closed-loop run (`connections` in flight for `durationMs`, after `warmupRequests`); throws
 * unless every answer was a 200.
 */
export async function closedLoop(
  label: string,
  run: HttpLoadRun & { durationMs: number },
): Promise<HttpLoadResult> {
  const [result] = await runHttpLoad([run]);
  expectAllOk(label, result!, run.expectStatus);
  return result!;
}
