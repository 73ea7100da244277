/**
 * Helpers for this package's integration tests and benchmarks: a broker per test file, quiet
 * kafkajs clients, random names and condition waits (never fixed sleeps).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import type { Consumer, Kafka as KafkaClient, KafkaConfig, KafkaMessage } from 'kafkajs';
import { Reader } from './protocol/reader.js';
import { Writer } from './protocol/writer.js';

const { Kafka, logLevel } = kafkajs;

export function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/** A kafkajs client with logging off and short retries, pointed at one broker. */
export function kafkaClient(brokers: string, overrides: Partial<KafkaConfig> = {}): KafkaClient {
  return new Kafka({
    clientId: randomName('test'),
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 },
    ...overrides,
  });
}

/**
 * Starts a consumer on `topic` from the beginning that pushes `format(message)` (default: the value
 * as text) onto `items` in arrival order. The caller waits on `items` and disconnects `consumer`.
 */
export async function collectMessages<T = string>(
  kafka: KafkaClient,
  topic: string,
  options: { groupId?: string; format?: (message: KafkaMessage) => T } = {},
): Promise<{ consumer: Consumer; items: T[] }> {
  const format = options.format ?? ((m: KafkaMessage) => String(m.value) as T);
  const consumer = kafka.consumer({
    groupId: options.groupId ?? randomName('g'),
    maxWaitTimeInMs: 100,
  });
  const items: T[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ message }) => {
      items.push(format(message));
      return Promise.resolve();
    },
  });
  return { consumer, items };
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export { kcatConsumeAll, kcatFound, runKcat } from './kcat-runner.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BROKER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

/** A broker running as its own process, as `pnpm broker` runs it. */
export interface BrokerProcess {
  child: ChildProcess;
  brokers: string;
  /** Every JSON log line the process printed so far. */
  lines: Record<string, unknown>[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `main.ts --port 0` as a child process and resolves once its "broker listening" line
 * says which port it bound.
 */
export function spawnBrokerProcess(args: string[], timeoutMs = 30_000): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', BROKER_MAIN, '--port', '0', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`broker process did not start; stderr: ${stderr}`));
    }, timeoutMs);
    let pending = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString('utf8');
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        lines.push(line);
        if (line['msg'] === 'broker listening') {
          clearTimeout(timer);
          resolve({ child, brokers: String(line['brokers']), lines, exited });
        }
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`broker process exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
}

/**
 * A bare-bones protocol client for tests that need frames kafkajs would never send: one socket,
 * request header v1, one request in flight at a time.
 */
export class RawClient {
  private buffered = Buffer.alloc(0);
  private waiting: ((frame: Buffer) => void) | null = null;
  private correlationId = 0;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (
        this.buffered.length >= 4 &&
        this.buffered.length >= 4 + this.buffered.readInt32BE(0)
      ) {
        const size = this.buffered.readInt32BE(0);
        const frame = this.buffered.subarray(4, 4 + size);
        this.buffered = this.buffered.subarray(4 + size);
        const waiter = this.waiting;
        this.waiting = null;
        waiter?.(frame);
      }
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(brokers: string): Promise<RawClient> {
    const [host, port] = brokers.split(':');
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: host ?? '127.0.0.1', port: Number(port) }, () =>
        resolve(new RawClient(socket)),
      );
      socket.once('error', reject);
    });
  }

  /** Builds a request frame: size, api key, version, correlation id, client id, body. */
  frame(apiKey: number, apiVersion: number, body: Buffer, clientId = 'raw'): Buffer {
    const head = new Writer()
      .int16(apiKey)
      .int16(apiVersion)
      .int32(++this.correlationId)
      .string(clientId)
      .toBuffer();
    const size = Buffer.alloc(4);
    size.writeInt32BE(head.length + body.length);
    return Buffer.concat([size, head, body]);
  }

  /** Sends a request and resolves with the response body reader (correlation id checked). */
  async request(apiKey: number, apiVersion: number, body: Buffer): Promise<Reader> {
    const frame = this.frame(apiKey, apiVersion, body);
    const expected = this.correlationId;
    const response = new Promise<Buffer>((resolve) => {
      this.waiting = resolve;
    });
    this.socket.write(frame);
    const reader = new Reader(await response);
    const correlationId = reader.int32();
    if (correlationId !== expected)
      throw new Error(`correlation id ${correlationId}, expected ${expected}`);
    return reader;
  }

  close(): void {
    this.socket.destroy();
  }
}
