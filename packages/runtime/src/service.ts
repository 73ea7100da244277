import type { Logger } from '@candlestream/logger';
import { type ActorOptions, type AnyStateMachine, createActor } from 'xstate';
import { stateName, watchActor } from './actor.js';
import { type HealthReport, type OpsServer, startOpsServer } from './http.js';
import { healthFromTags, type Problems } from './machine.js';
import type { Metrics } from './metrics.js';

/** xstate's clock (`setTimeout`/`clearTimeout`): the one every `after` delay runs on. */
export type ActorClock = NonNullable<ActorOptions<AnyStateMachine>['clock']>;

/** What every service machine keeps in its context, and /health reports. */
export interface ServiceContext {
  /** Failed starts in a row. */
  attempt: number;
  lastError: string | undefined;
  /** Dependencies failing right now, by check name. */
  problems: Problems;
}

/** Something service.ts opened that the kernel closes after the actor ended. */
export interface Resource {
  /** For the log line when closing it fails. */
  name: string;
  close(): Promise<unknown> | void;
}

export interface MachineServiceOptions {
  name: string;
  /** The service machine with its actors already given (`machine.provide(...)`). */
  machine: AnyStateMachine;
  logger: Logger;
  metrics: Metrics;
  /**
   * Where `/health` and `/metrics` are served: an ops server of their own on `port`, or the
   * service's own HTTP server (`serve`, handed the health function; the datastore's API).
   */
  ops:
    | { port: number; portVariable: string; host?: string }
    | { serve: (health: () => HealthReport) => Promise<OpsServer> };
  /**
   * The service's own entries in `/health`'s `checks`, beside problems and the last failure;
   * given the machine's current context.
   */
  checks?: (context: unknown) => Record<string, unknown>;
  /** The machine's input, for a machine that takes one. */
  input?: unknown;
  /** The clock the machine's delays run on (the system's timers otherwise). */
  clock?: ActorClock;
  /** Closed in reverse order after the actor has stopped (pools last, as they were opened first). */
  resources?: readonly Resource[];
}

export interface MachineService {
  /** The port `/health` and `/metrics` answer on. */
  readonly port: number;
  /** The actor's current state, e.g. `streaming.healthy`. */
  readonly state: () => string;
  readonly health: () => HealthReport;
  /** Resolves when the machine reached a final state and the resources are closed. */
  readonly done: Promise<void>;
  /** Stops the actor (STOP), then closes the server and the resources in reverse order. Idempotent. */
  readonly stop: () => Promise<void>;
}

/**
 * The one way a service process runs its machine: the actor, `/health` (from the current state's
 * tags, never its name: `healthFromTags`) and `/metrics`, and the ordered stop. The server listens
 * before the actor starts, so a port already in use fails the start with nothing running.
 */
export async function startMachineService(options: MachineServiceOptions): Promise<MachineService> {
  const { name, logger } = options;
  const actor = createActor(options.machine, {
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.input === undefined ? {} : { input: options.input }),
  });
  const health = (): HealthReport => {
    const snapshot = actor.getSnapshot();
    const { problems, lastError, attempt } = snapshot.context as ServiceContext;
    return {
      status: healthFromTags(snapshot),
      service: name,
      state: stateName(snapshot.value),
      checks: {
        problems,
        ...(lastError ? { lastError, failedStarts: attempt } : {}),
        ...options.checks?.(snapshot.context),
      },
    };
  };

  let closing: Promise<void> | undefined;
  const close = (resources: readonly Resource[]): Promise<void> =>
    (closing ??= (async () => {
      for (const resource of [...resources].reverse()) {
        try {
          await resource.close();
        } catch (err) {
          logger.warn('close failed', { resource: resource.name, err });
        }
      }
    })());

  const resources = options.resources ?? [];
  let server: OpsServer;
  try {
    server =
      'serve' in options.ops
        ? await options.ops.serve(health)
        : await startOpsServer({ ...options.ops, logger, metrics: options.metrics, health });
  } catch (err) {
    await close(resources);
    throw err;
  }
  const owned = [...resources, { name: 'server', close: () => server.close() }];

  const running = watchActor(actor, logger);
  const done = running.done.then(
    () => close(owned),
    async (err: unknown) => {
      await close(owned);
      throw err;
    },
  );
  // Observed here so an actor failure is never an unhandled rejection; callers await `done`.
  done.catch(() => undefined);
  return {
    port: server.port,
    state: () => running.state(),
    health,
    done,
    stop: async () => {
      await running.stop();
      await close(owned);
    },
  };
}
