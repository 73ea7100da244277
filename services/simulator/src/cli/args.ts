/**
 * `pnpm replay` arguments (docs/REPLAY.md). Anything wrong is one line and exit status 2.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { EpochMs, Interval, MarketSymbol } from '@candlestream/core';
import {
  errorMessage,
  parseInstant,
  parseInterval,
  parseSymbolList,
  REPLAY_SESSION_PATTERN,
  replayTopicName,
} from '@candlestream/core';
import type { ReplaySpeed } from '../replay/types.js';
import { MAX_SPEED, MIN_SPEED } from '../replay/types.js';

export const USAGE = `usage: pnpm replay --symbols BTC-USD[,ETH-USD] --from ISO --to ISO [--speed N|max]
                   [--source stored|file:PATH] [--session NAME] [--topic NAME]
                   [--control-port N] [--step INTERVAL] [--paused]
  --from, --to     ISO-8601 (2026-11-20, 2026-11-20T00:00Z) or epoch ms; to is exclusive
  --speed          simulated seconds per second, ${String(MIN_SPEED)} to ${String(MAX_SPEED)}, or max (default 1)
  --source         stored history (default) or a trade file (.csv, .ndjson, optionally .gz)
  --session        names the topic replay.<session> (default cli-<random>)
  --topic          publish to this topic instead (a consumer of your own)
  --control-port   GET /status, POST /pause /resume /step /seek?to=ISO /speed?x=N on 127.0.0.1
  --step           the bar one step (right arrow, POST /step) publishes (default 1m)
  --paused         start paused
keys: space pause/resume, + and - speed, right arrow one step, q quit; SIGUSR1 pause, SIGUSR2 resume`;

/** A command-line mistake: its message is the one line shown; status 2 (0 for --help). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly code = 2,
  ) {
    super(message);
  }
}

export interface ReplayArgs {
  symbols: MarketSymbol[];
  from: EpochMs;
  to: EpochMs;
  speed: ReplaySpeed;
  source: { kind: 'stored' } | { kind: 'file'; path: string };
  session: string;
  topic: string;
  controlPort: number | undefined;
  stepInterval: Interval;
  paused: boolean;
}

/** Kafka topic names: at most 249 of [A-Za-z0-9._-]. */
const TOPIC_PATTERN = /^[A-Za-z0-9._-]{1,249}$/;

export function parseSpeed(text: string): ReplaySpeed {
  if (text.trim().toLowerCase() === 'max') return 'max';
  const speed = Number(text.trim().replace(/x$/i, ''));
  if (!Number.isFinite(speed) || speed < MIN_SPEED || speed > MAX_SPEED) {
    throw new UsageError(
      `--speed must be a number from ${String(MIN_SPEED)} to ${String(MAX_SPEED)} or max, not ${JSON.stringify(text)}`,
    );
  }
  return speed;
}

function instant(name: string, text: string | undefined): EpochMs {
  if (text === undefined) throw new UsageError(`--${name} is required`);
  const ms = parseInstant(text);
  if (ms === undefined) {
    throw new UsageError(`--${name} must be ISO-8601 or epoch ms, not ${JSON.stringify(text)}`);
  }
  return ms;
}

export function parseReplayArgs(argv: readonly string[]): ReplayArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        symbols: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        speed: { type: 'string' },
        source: { type: 'string' },
        session: { type: 'string' },
        topic: { type: 'string' },
        'control-port': { type: 'string' },
        step: { type: 'string' },
        paused: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
  if (values.help) throw new UsageError('', 0);
  if (values.symbols === undefined) throw new UsageError('--symbols is required');
  let symbols: MarketSymbol[];
  try {
    symbols = parseSymbolList(values.symbols);
  } catch (err) {
    throw new UsageError(`--symbols: ${errorMessage(err)}`);
  }
  const from = instant('from', values.from);
  const to = instant('to', values.to);
  if (!(from < to)) throw new UsageError('--to must be after --from');
  const speed = values.speed === undefined ? 1 : parseSpeed(values.speed);

  const sourceText = values.source ?? 'stored';
  let source: ReplayArgs['source'];
  if (sourceText === 'stored') source = { kind: 'stored' };
  else if (sourceText.startsWith('file:') && sourceText.length > 'file:'.length) {
    source = { kind: 'file', path: sourceText.slice('file:'.length) };
  } else {
    throw new UsageError(`--source must be stored or file:PATH, not ${JSON.stringify(sourceText)}`);
  }

  const session = values.session ?? `cli-${randomBytes(4).toString('hex')}`;
  if (!REPLAY_SESSION_PATTERN.test(session)) {
    throw new UsageError('--session must be 1-64 of A-Z a-z 0-9 _ -');
  }
  const topic = values.topic ?? replayTopicName(session);
  if (!TOPIC_PATTERN.test(topic))
    throw new UsageError('--topic must be 1-249 of A-Z a-z 0-9 . _ -');
  if (topic === 'tick-data') {
    throw new UsageError(
      '--topic tick-data would mix the replay into the live series; name another',
    );
  }

  let controlPort: number | undefined;
  if (values['control-port'] !== undefined) {
    controlPort = Number(values['control-port']);
    if (!Number.isInteger(controlPort) || controlPort < 0 || controlPort > 65_535) {
      throw new UsageError(`--control-port must be a port number, not ${values['control-port']}`);
    }
  }
  let stepInterval: Interval;
  try {
    stepInterval = parseInterval(values.step ?? '1m');
  } catch (err) {
    throw new UsageError(`--step: ${errorMessage(err)}`);
  }
  return {
    symbols,
    from,
    to,
    speed,
    source,
    session,
    topic,
    controlPort,
    stepInterval,
    paused: values.paused ?? false,
  };
}
