/**
 * `pnpm backfill --symbol BTC-USD --from 2026-11-01 --to 2026-11-08 [--url …] [--token …]`: asks
 * the running platform for history (POST /backfills, docs/API.md) and follows the job
 * (GET /backfills/:id every 500 ms) with a progress bar, until it is done (exit 0) or failed (1).
 * Bad arguments exit 2 with the usage; a platform that does not answer exits 1 saying so.
 */
import { parseArgs } from 'node:util';

const POLL_MS = 500;
const BAR_WIDTH = 30;
const USAGE = `usage: pnpm backfill --symbol BTC-USD --from 2026-11-01 --to 2026-11-08 [--url http://127.0.0.1:3000] [--token JWT]
  --from, --to   ISO-8601 (2026-11-01, 2026-11-01T12:00:00Z) or 13-digit epoch ms; to is exclusive
  --url          the datastore (default http://127.0.0.1:$PORT, PORT default 3000)
  --token        a Bearer token, when the platform runs with AUTH_MODE=jwt`;

interface Job {
  id: string;
  symbol: string;
  from: string;
  to: string;
  status: string;
  progress: { done: number; total: number };
  error: string | null;
  unavailable: { from: string; to: string; reason: string; stored?: string }[];
}

class Exit extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly usage = false,
  ) {
    super(message);
  }
}

function options(argv: string[]): {
  symbol: string;
  from: string;
  to: string;
  url: string;
  token?: string;
} {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        symbol: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new Exit(2, (err as Error).message, true);
  }
  if (values.help) throw new Exit(0, '', true);
  for (const name of ['symbol', 'from', 'to'] as const) {
    if (!values[name]) throw new Exit(2, `--${name} is required`, true);
  }
  const url = (values.url ?? `http://127.0.0.1:${process.env['PORT'] ?? '3000'}`).replace(
    /\/+$/,
    '',
  );
  if (!/^https?:\/\/[^/]+/.test(url)) throw new Exit(2, `--url ${url} is not an http(s) URL`, true);
  return {
    symbol: values.symbol!,
    from: values.from!,
    to: values.to!,
    url,
    ...(values.token ? { token: values.token } : {}),
  };
}

async function request(
  url: string,
  path: string,
  init: RequestInit,
): Promise<{ status: number; body: Record<string, unknown> }> {
  let response: Response;
  try {
    response = await fetch(`${url}${path}`, init);
  } catch {
    throw new Exit(1, `no platform answers at ${url}; start it with pnpm start`);
  }
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    throw new Exit(
      1,
      `${url}${path} answered ${response.status} without JSON; is that the datastore?`,
    );
  }
}

/** The platform's `{"error": …}` message, or the status when there is none. */
function errorOf(answer: { status: number; body: Record<string, unknown> }): string {
  const error = answer.body['error'];
  return typeof error === 'string' ? error : `HTTP ${answer.status}`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3_600);
  const mm = String(Math.floor((s % 3_600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** One progress line: bar, percent, minutes done/total, rate and ETA (once there is a rate). */
function progressLine(job: Job, ratePerS: number | undefined): string {
  const { done, total } = job.progress;
  const fraction = total > 0 ? Math.min(1, done / total) : job.status === 'done' ? 1 : 0;
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
  const percent = `${String(Math.floor(fraction * 100)).padStart(3)}%`;
  const counts = `${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} min`;
  const rate = ratePerS === undefined ? '-- min/s' : `${ratePerS.toFixed(1)} min/s`;
  const eta = ratePerS && ratePerS > 0 ? `ETA ${duration((total - done) / ratePerS)}` : 'ETA --:--';
  return `${bar} ${percent} ${counts} ${rate} ${eta} ${job.status}`;
}

async function main(): Promise<number> {
  const args = options(process.argv.slice(2));
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (args.token) headers['authorization'] = `Bearer ${args.token}`;
  const posted = await request(args.url, '/backfills', {
    method: 'POST',
    headers,
    body: JSON.stringify({ symbol: args.symbol, from: args.from, to: args.to }),
  });
  if (posted.status === 400 || posted.status === 404) {
    throw new Exit(2, errorOf(posted), true);
  }
  if (posted.status !== 202) {
    throw new Exit(1, `the platform refused: ${errorOf(posted)}`);
  }
  let job = posted.body as unknown as Job;
  process.stdout.write(`backfill ${job.id}: ${job.symbol} ${job.from} .. ${job.to}\n`);
  const tty = process.stdout.isTTY === true;
  let last = '';
  let firstSeen: { at: number; done: number } | undefined;
  for (;;) {
    const now = performance.now();
    // The rate counts from the first poll that saw the job running.
    if (!firstSeen && (job.status === 'fetching' || job.status === 'storing'))
      firstSeen = { at: now, done: job.progress.done };
    const elapsedS = firstSeen ? (now - firstSeen.at) / 1_000 : 0;
    const rate =
      firstSeen && elapsedS > 0.2 ? (job.progress.done - firstSeen.done) / elapsedS : undefined;
    const line = progressLine(job, rate);
    // Off a terminal a line per change (progress or status), not per poll.
    const change = `${job.status} ${job.progress.done}/${job.progress.total}`;
    if (tty) process.stdout.write(`\r\x1b[2K${line}`);
    else if (change !== last) process.stdout.write(`${line}\n`);
    last = change;
    if (job.status === 'done' || job.status === 'failed') break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const polled = await request(args.url, `/backfills/${job.id}`, { headers });
    if (polled.status !== 200) {
      throw new Exit(1, `GET /backfills/${job.id}: ${errorOf(polled)}`);
    }
    job = polled.body as unknown as Job;
  }
  if (tty) process.stdout.write('\n');
  if (job.status === 'failed') {
    throw new Exit(1, `backfill ${job.id} failed: ${job.error ?? 'no reason given'}`);
  }
  process.stdout.write(`done: ${job.progress.done} minutes stored\n`);
  if (job.unavailable.length > 0) {
    process.stdout.write('the source could not provide:\n');
    for (const u of job.unavailable) {
      const instead = u.stored ? ` (${u.stored} candles stored instead)` : '';
      process.stdout.write(`  ${u.from} .. ${u.to}: ${u.reason}${instead}\n`);
    }
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof Exit) {
      if (err.message) process.stderr.write(`${err.message}\n`);
      if (err.usage) (err.code === 0 ? process.stdout : process.stderr).write(`${USAGE}\n`);
      process.exit(err.code);
    }
    process.stderr.write(`backfill: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
