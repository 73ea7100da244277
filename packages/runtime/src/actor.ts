import type { Logger } from '@candlestream/logger';

/** A machine's state value as one dotted string, e.g. `running.degraded`. */
export function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${k}.${stateName(v)}`)
      .join(',');
  }
  return String(value);
}

export interface ActorLike {
  getSnapshot(): { value: unknown; status: string };
  /** Every service machine takes STOP, from any state, to its final state. */
  send(event: { type: 'STOP' }): void;
  subscribe(observer: {
    next?: (snapshot: { value: unknown }) => void;
    error?: (err: unknown) => void;
    complete?: () => void;
  }): unknown;
  start(): unknown;
}

export interface WatchedActor {
  /** The current state, for /health. */
  state(): string;
  /** Resolves when the machine reaches a final state; rejects if the actor errors. */
  done: Promise<void>;
  /** Sends STOP unless the actor has already ended, then waits for its end. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a service's root actor, logging each state change as one line. An actor error would
 * otherwise leave the root actor in `error` status silently (STYLE: known traps): it is logged
 * and surfaces through `done`.
 */
export function watchActor(actor: ActorLike, logger: Logger): WatchedActor {
  const log = logger.child({ component: 'actor' });
  let last = '';
  const done = new Promise<void>((resolve, reject) => {
    actor.subscribe({
      next: (snapshot: { value: unknown }) => {
        const name = stateName(snapshot.value);
        if (name === last) return;
        log.info('state', { from: last || undefined, to: name });
        last = name;
      },
      error: (err: unknown) => {
        log.error('actor failed', { err });
        reject(err instanceof Error ? err : new Error(String(err)));
      },
      complete: () => resolve(),
    });
  });
  // Observed here so an early failure is never an unhandled rejection; callers await `done`.
  done.catch(() => undefined);
  actor.start();
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (actor.getSnapshot().status === 'active') actor.send({ type: 'STOP' });
      await done.catch(() => undefined);
    })());
  return { state: () => stateName(actor.getSnapshot().value), done, stop };
}
