/**
 * Bench scaffolding, run as its own process by datastore.bench.ts: COUNT WebSocket clients of
 * /stream, each subscribed to one series, so the datastore's fan-out is measured without the
 * clients sharing its event loop or the bench's. argv: url, count, symbol, interval.
 * Prints JSON lines: `ready` once every client has its `subscribed` answer; then, for each bar
 * whose close the clients have not seen before, `reached` once all COUNT clients got it, with
 * the wall-clock times (epoch ms) of the first and the last receipt.
 */
import WebSocket from 'ws';

const [url = '', countText = '1', symbol = 'BTC-USD', interval = '1m'] = process.argv.slice(2);
const count = Number(countText);
/** Connections opened at a time: more at once overflows the listen backlog (SYN retries, 1 s). */
const CONNECT_AT_ONCE = 50;

const print = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};
const seen = new Map<number, { n: number; first: number; last: number }>();
const sockets: WebSocket[] = [];

function onBar(close: number): void {
  const now = performance.timeOrigin + performance.now();
  let entry = seen.get(close);
  if (!entry) seen.set(close, (entry = { n: 0, first: now, last: now }));
  entry.n += 1;
  entry.last = now;
  if (entry.n === count) print({ msg: 'reached', close, first: entry.first, last: entry.last });
}

function open(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    sockets.push(socket);
    socket.once('error', reject);
    socket.once('open', () => socket.send(JSON.stringify({ type: 'subscribe', symbol, interval })));
    socket.on('message', (data: WebSocket.RawData) => {
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString()
        : Buffer.from(data as ArrayBuffer).toString();
      const message = JSON.parse(text) as { type?: string; bar?: { close?: number } };
      if (message.type === 'subscribed') resolve();
      else if (message.type === 'bar' && typeof message.bar?.close === 'number')
        onBar(message.bar.close);
      else if (message.type === 'error') reject(new Error(text));
    });
    socket.once('close', (code) => print({ msg: 'closed', code }));
  });
}

async function main(): Promise<void> {
  const started = performance.now();
  for (let i = 0; i < count; i += CONNECT_AT_ONCE)
    await Promise.all(Array.from({ length: Math.min(CONNECT_AT_ONCE, count - i) }, open));
  print({ msg: 'ready', clients: sockets.length, ms: Math.round(performance.now() - started) });
}

process.on('SIGTERM', () => {
  for (const s of sockets) s.terminate();
  process.exit(0);
});
main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
