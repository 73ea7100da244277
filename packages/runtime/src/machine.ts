/**
 * What every service machine decides the same way, as plain functions the machines' own
 * `assign` actions and guards call. Pure (no I/O, no Node built-ins): `*.machine.ts` files import
 * it as `@candlestream/runtime/machine`.
 */
import { backoffDelayMs, errorMessage } from '@candlestream/core';

/** A failed start waits from half a second, doubling, jittered, up to `maxDelayMs`. */
export function restartDelayMs(failures: number, maxDelayMs: number): number {
  return backoffDelayMs(failures - 1, { initialDelayMs: 500, maxDelayMs, jitter: 0.3 });
}

/** The default of an actor that main.ts must provide (machines carry no I/O of their own). */
export function notProvided(name: string): never {
  throw new Error(`actor ${name} must be provided with machine.provide()`);
}

/** The message of a failure: onError events and CRASHED/SOURCE_FAILED all carry `error`. */
export function failureMessage(event: { type: string }): string {
  return errorMessage((event as { error?: unknown }).error ?? event.type);
}

/** Dependencies failing right now, by check name, with what is wrong. */
export type Problems<C extends string = string> = Partial<Record<C, string>>;

export type ProblemEvent<C extends string = string> =
  | { type: 'DEGRADED'; check: C; problem: string }
  | { type: 'RECOVERED'; check: C }
  | { type: string };

function isDegraded<C extends string>(
  e: ProblemEvent<C>,
): e is { type: 'DEGRADED'; check: C; problem: string } {
  return e.type === 'DEGRADED';
}

function isRecovered<C extends string>(e: ProblemEvent<C>): e is { type: 'RECOVERED'; check: C } {
  return e.type === 'RECOVERED';
}

/** `problems` with a DEGRADED event's check recorded; any other event changes nothing. */
export function withProblem<C extends string>(
  problems: Problems<C>,
  event: ProblemEvent<C>,
): Problems<C> {
  return isDegraded(event) ? { ...problems, [event.check]: event.problem } : problems;
}

/** `problems` without a RECOVERED event's check; any other event changes nothing. */
export function withoutProblem<C extends string>(
  problems: Problems<C>,
  event: ProblemEvent<C>,
): Problems<C> {
  if (!isRecovered(event)) return problems;
  const rest = { ...problems };
  delete rest[event.check];
  return rest;
}

/** Whether a RECOVERED event clears the last failing check. */
export function allRecovered<C extends string>(
  problems: Problems<C>,
  event: ProblemEvent<C>,
): boolean {
  return isRecovered(event) && Object.keys(problems).every((check) => check === event.check);
}

/** The tags a service machine puts on its states; `/health` answers from them alone. */
export type HealthTag = 'healthy' | 'degraded' | 'down';

/**
 * A snapshot's health from its state's tags: `down` wins over `degraded` over `healthy`; a state
 * without a health tag is `down` (a machine that forgot one is not vouched for).
 */
export function healthFromTags(snapshot: {
  hasTag(tag: HealthTag): boolean;
}): 'ok' | 'degraded' | 'down' {
  if (snapshot.hasTag('down')) return 'down';
  if (snapshot.hasTag('degraded')) return 'degraded';
  return snapshot.hasTag('healthy') ? 'ok' : 'down';
}

/** The parts of an xstate machine `healthOfEveryState` reads (structural, so no xstate import). */
interface StateNodeLike {
  path: string[];
  states: Record<string, StateNodeLike>;
}

interface MachineLike {
  root: StateNodeLike;
  resolveState(config: { value: string | Record<string, unknown>; context: unknown }): {
    hasTag(tag: HealthTag): boolean;
  };
}

/**
 * The `/health` status of every leaf state of `machine`, by dotted path (`streaming.healthy`),
 * resolved from its tags: what each machine's unit test compares with the whole table it expects,
 * so a state added without a health tag fails there.
 */
export function healthOfEveryState(
  machine: MachineLike,
  context: unknown,
): Record<string, 'ok' | 'degraded' | 'down'> {
  const health: Record<string, 'ok' | 'degraded' | 'down'> = {};
  const visit = (node: StateNodeLike): void => {
    const children = Object.values(node.states);
    if (children.length > 0) {
      for (const child of children) visit(child);
      return;
    }
    const value = node.path
      .slice(0, -1)
      .reduceRight<string | Record<string, unknown>>(
        (inner, key) => ({ [key]: inner }),
        node.path[node.path.length - 1] ?? '',
      );
    health[node.path.join('.')] = healthFromTags(machine.resolveState({ value, context }));
  };
  visit(machine.root);
  return health;
}
