/**
 * `pnpm replay` (docs/REPLAY.md): replays stored history (or a file) into `replay.<session>` (or
 * `--topic`) at the chosen speed, as one session machine, with one live status line, control
 * from the keyboard, SIGUSR1 (pause) / SIGUSR2 (resume) and `--control-port`, and a summary.
 * Exit status: 0 when the replay ended (done or quit), 1 when it failed, 2 for bad arguments or
 * configuration.
 */
import type { Env } from '@candlestream/config';
import type { Clock } from '@candlestream/core';
import { AppError, errorMessage, systemClock } from '@candlestream/core';
import { Repository } from '@candlestream/db';
import { createKafka, ensureTopics, KafkaPublisher, replayTopic } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import { createLogger } from '@candlestream/logger';
import type { OpsServer } from '@candlestream/runtime';
import { createActor, fromPromise, waitFor } from 'xstate';
import { replayActor } from '../actors/replay.js';
import { loadReplayConfig } from '../config.js';
import { fileHistory, storedHistory } from '../history/index.js';
import { kafkaSink } from '../replay/kafka-sink.js';
import type { HistorySource } from '../replay/types.js';
import type { ControlEvent } from '../session.machine.js';
import { sessionMachine } from '../session.machine.js';
import type { ReplayArgs } from './args.js';
import { parseReplayArgs, USAGE, UsageError } from './args.js';
import { startControlServer } from './control.js';
import { listenToKeys } from './keyboard.js';
import { statusLine, summaryLines } from './status.js';

/** Without a terminal, the status goes out as a line this often, ms. */
const PLAIN_STATUS_INTERVAL_MS = 5_000;
/** On a terminal, the status line is redrawn this often, ms. */
const TTY_STATUS_INTERVAL_MS = 250;

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
  /** Where SIGUSR1 / SIGUSR2 arrive. */
  process: Pick<NodeJS.Process, 'on' | 'off'>;
  clock?: Clock;
}

const defaultIo = (): CliIo => ({
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  process,
});

/** Runs the replay the arguments ask for and resolves with the exit status. */
export async function runReplayCli(
  argv: readonly string[],
  env: Env,
  io: CliIo = defaultIo(),
): Promise<number> {
  let args: ReplayArgs;
  try {
    args = parseReplayArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.code === 0) {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    io.stderr.write(`pnpm replay: ${err.message} (--help for usage)\n`);
    return 2;
  }
  let config;
  try {
    config = loadReplayConfig(env, args.source.kind === 'stored');
  } catch (err) {
    io.stderr.write(`pnpm replay: ${errorMessage(err)}\n`);
    return 2;
  }
  const tty = io.stdout.isTTY;
  // On a terminal the status line is the output and logs (stderr) say what went wrong; piped,
  // stdout is the JSON log, the status one `replay status` line every few seconds.
  const logger = createLogger({
    service: 'simulator',
    level: env['LOG_LEVEL'] ? config.logLevel : tty ? 'warn' : 'info',
    stream: tty ? io.stderr : io.stdout,
  });
  const clock = io.clock ?? systemClock;
  const closers: (() => Promise<unknown> | void)[] = [];
  try {
    let source: HistorySource;
    if (args.source.kind === 'stored') {
      const repository = new Repository({ url: config.databaseUrl!, logger });
      closers.push(() => repository.close());
      source = storedHistory({ repository, logger });
    } else {
      source = fileHistory({ path: args.source.path, logger });
    }
    const kafka = createKafka({ brokers: config.kafkaBrokers, clientId: 'replay', logger });
    const publisher = new KafkaPublisher(kafka);
    closers.push(() => publisher.disconnect());
    return await replay(args, {
      brokers: config.kafkaBrokers.join(','),
      source,
      publisher,
      kafka,
      logger,
      clock,
      io,
      tty,
      closers,
    });
  } catch (err) {
    io.stderr.write(`pnpm replay: ${errorMessage(err)}\n`);
    return AppError.is(err) && err.code === 'INVALID_CONFIG' ? 2 : 1;
  } finally {
    for (const close of closers.reverse()) {
      await Promise.resolve(close()).catch((err: unknown) =>
        logger.warn('closing failed', { err }),
      );
    }
  }
}

interface ReplayContext {
  /** For messages: where the broker was looked for. */
  brokers: string;
  source: HistorySource;
  publisher: KafkaPublisher;
  kafka: ReturnType<typeof createKafka>;
  logger: Logger;
  clock: Clock;
  io: CliIo;
  tty: boolean;
  closers: (() => Promise<unknown> | void)[];
}

async function replay(args: ReplayArgs, c: ReplayContext): Promise<number> {
  const { io, logger } = c;
  const machine = sessionMachine.provide({
    actors: {
      prepare: fromPromise(async () => {
        await ensureTopics(c.kafka, [replayTopic(args.topic)]);
        await c.publisher.connect();
      }),
      replay: replayActor({
        source: c.source,
        sink: (topic) => kafkaSink(c.publisher, topic),
        clock: c.clock,
      }),
    },
  });
  const plan = {
    range: { symbols: args.symbols, from: args.from, to: args.to },
    speed: args.speed,
    topic: args.topic,
  };
  const actor = createActor(machine, { input: { paused: args.paused, plan } });
  const control = (event: ControlEvent): void => {
    logger.info('replay control', { ...event });
    actor.send(event);
  };

  // Status: redrawn in place on a terminal, a plain line every few seconds otherwise.
  const draw = (): void => {
    const status = actor.getSnapshot().context.status;
    if (!status) return;
    if (c.tty) io.stdout.write(`\r${statusLine(status)}\u001b[K`);
    else logger.info('replay status', { ...status });
  };
  const drawTimer = c.clock.setInterval(
    draw,
    c.tty ? TTY_STATUS_INTERVAL_MS : PLAIN_STATUS_INTERVAL_MS,
  );
  c.closers.push(() => c.clock.clearInterval(drawTimer));

  const onPause = (): void => control({ type: 'PAUSE' });
  const onResume = (): void => control({ type: 'RESUME' });
  const onInterrupt = (): void => control({ type: 'QUIT' });
  io.process.on('SIGUSR1', onPause);
  io.process.on('SIGUSR2', onResume);
  io.process.on('SIGINT', onInterrupt);
  io.process.on('SIGTERM', onInterrupt);
  c.closers.push(() => {
    io.process.off('SIGUSR1', onPause);
    io.process.off('SIGUSR2', onResume);
    io.process.off('SIGINT', onInterrupt);
    io.process.off('SIGTERM', onInterrupt);
  });
  const snapshot = () => actor.getSnapshot();
  c.closers.push(
    listenToKeys(
      io.stdin,
      {
        playing: () => snapshot().hasTag('playing'),
        speed: () => snapshot().context.status?.speed ?? args.speed,
        step: args.stepInterval,
      },
      control,
    ),
  );

  actor.start();
  // Controls reach the engine once it runs: the control port opens then, not while preparing.
  await waitFor(actor, (s) => s.status !== 'active' || s.matches('running'), {
    timeout: Infinity,
  });
  let server: OpsServer | undefined;
  if (args.controlPort !== undefined && actor.getSnapshot().status === 'active') {
    server = await startControlServer({
      port: args.controlPort,
      step: args.stepInterval,
      control,
      status: () => snapshot().context.status,
    });
    c.closers.push(() => server?.close());
    // Also tells scripts and tests that passed --control-port 0 where it listens.
    logger.info('control listening', { port: server.port });
    if (c.tty) io.stderr.write(`control on http://127.0.0.1:${String(server.port)}\n`);
  }
  if (actor.getSnapshot().matches('running'))
    logger.info('replay started', {
      source: c.source.kind,
      symbols: args.symbols,
      from: new Date(args.from).toISOString(),
      to: new Date(args.to).toISOString(),
      speed: args.speed,
      topic: args.topic,
    });
  await waitFor(actor, (s) => s.status !== 'active', { timeout: Infinity });
  const final = snapshot();
  draw();
  if (c.tty) io.stdout.write('\n');
  if (final.matches('failed')) {
    const why = final.context.error ?? 'the replay failed';
    // A broker that does not answer is most often a platform that is not running.
    const hint = /ECONNREFUSED|connect|broker/i.test(why)
      ? ` (is the broker at ${c.brokers} running? pnpm start runs one, or set KAFKA_BROKERS)`
      : '';
    io.stderr.write(`pnpm replay: ${why}${hint}\n`);
    return 1;
  }
  const summary = final.context.summary;
  if (summary) {
    if (c.tty) for (const line of summaryLines(summary, args.topic)) io.stdout.write(`${line}\n`);
    logger.info('replay ended', { ...summary, topic: args.topic });
  }
  return 0;
}
