/**
 * Keys in a terminal: space pause/resume, + and - speed (doubled, halved), right arrow one
 * step, q (or Ctrl-C) quit. Only when stdin is a TTY; returns the function that restores it.
 */
import type { Interval } from '@candlestream/core';
import type { ReplaySpeed } from '../replay/types.js';
import { MAX_SPEED, MIN_SPEED } from '../replay/types.js';
import type { ControlEvent } from '../session.machine.js';

const RIGHT_ARROW = '\u001b[C';
const CTRL_C = '\u0003';

export interface KeyContext {
  playing: () => boolean;
  speed: () => ReplaySpeed;
  step: Interval;
}

/** What a key means now, or undefined for a key that means nothing. */
export function keyCommand(key: string, context: KeyContext): ControlEvent | undefined {
  const speed = context.speed();
  switch (key) {
    case ' ':
      return { type: context.playing() ? 'PAUSE' : 'RESUME' };
    case '+':
    case '=':
      return speed === 'max' ? undefined : { type: 'SPEED', speed: Math.min(MAX_SPEED, speed * 2) };
    case '-':
    case '_':
      return { type: 'SPEED', speed: speed === 'max' ? 1_000 : Math.max(MIN_SPEED, speed / 2) };
    case RIGHT_ARROW:
      return { type: 'STEP', interval: context.step };
    case 'q':
    case 'Q':
    case CTRL_C:
      return { type: 'QUIT' };
    default:
      return undefined;
  }
}

export function listenToKeys(
  stdin: NodeJS.ReadStream,
  context: KeyContext,
  control: (event: ControlEvent) => void,
): () => void {
  if (!stdin.isTTY) return () => undefined;
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  const onData = (data: string): void => {
    const event = keyCommand(data, context);
    if (event) control(event);
  };
  stdin.on('data', onData);
  stdin.resume();
  return () => {
    stdin.off('data', onData);
    stdin.setRawMode(false);
    stdin.pause();
  };
}
