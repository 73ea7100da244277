/**
 * Where test infrastructure comes from, in order (issue #2):
 *   1. URLs from the environment (DATABASE_URL, REDIS_URL, KAFKA_BROKERS, TIMESCALEDB_URL);
 *   2. testcontainers, when a Docker engine answers (pinned images);
 *   3. the services on this machine (PostgreSQL 127.0.0.1:5432, Redis 127.0.0.1:6379, the
 *      project's own broker started in-process).
 * This module is the decision only; the probes and starters are injected, so it is unit-tested.
 */

/**
 * `timescaledb` is a real TimescaleDB server (optional: only from the environment or a container);
 * `pglite` is TimescaleDB on the PGlite build, always available on this machine.
 */
export const SERVICE_KINDS = ['postgres', 'redis', 'kafka', 'timescaledb', 'pglite'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

export type Origin = 'env' | 'container' | 'local';

export interface AvailableService {
  available: true;
  kind: ServiceKind;
  /** postgres/timescaledb: an admin URL (may create databases); redis: redis://; kafka: host:port list. */
  url: string;
  origin: Origin;
}

export interface UnavailableService {
  available: false;
  kind: ServiceKind;
  /** Every place that was tried and why it failed, for the failure message. */
  reason: string;
}

export type ServiceInfo = AvailableService | UnavailableService;

export type Infrastructure = Record<ServiceKind, ServiceInfo>;

/** Environment variable that points tests at an existing service. */
export const ENV_URL_NAMES: Readonly<Record<ServiceKind, string>> = {
  postgres: 'DATABASE_URL',
  redis: 'REDIS_URL',
  kafka: 'KAFKA_BROKERS',
  timescaledb: 'TIMESCALEDB_URL',
  pglite: 'PGLITE_URL',
};

export interface Started {
  url: string;
  stop: () => Promise<void>;
}

export interface InfraDeps {
  env: Readonly<Record<string, string | undefined>>;
  dockerAvailable(): Promise<boolean>;
  /** Starts a container for `kind`, or throws. */
  startContainer(kind: ServiceKind): Promise<Started>;
  /** Finds or starts the local service for `kind`; throws with the reason when there is none. */
  startLocal(kind: ServiceKind): Promise<Started>;
}

export interface ResolvedInfrastructure {
  infra: Infrastructure;
  /** Stops whatever was started, newest first. Idempotent. */
  stop(): Promise<void>;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function resolveInfrastructure(
  deps: InfraDeps,
  kinds: readonly ServiceKind[] = SERVICE_KINDS,
): Promise<ResolvedInfrastructure> {
  const stops: (() => Promise<void>)[] = [];
  const infra = {} as Infrastructure;
  let docker: boolean | undefined;
  for (const kind of kinds) {
    const tried: string[] = [];
    const fromEnv = deps.env[ENV_URL_NAMES[kind]]?.trim();
    if (fromEnv) {
      infra[kind] = { available: true, kind, url: fromEnv, origin: 'env' };
      continue;
    }
    tried.push(`${ENV_URL_NAMES[kind]} is not set`);
    docker ??= await deps.dockerAvailable().catch(() => false);
    if (docker) {
      try {
        const started = await deps.startContainer(kind);
        stops.push(started.stop);
        infra[kind] = { available: true, kind, url: started.url, origin: 'container' };
        continue;
      } catch (err) {
        tried.push(`container failed: ${message(err)}`);
      }
    } else {
      tried.push('no Docker engine answers');
    }
    try {
      const started = await deps.startLocal(kind);
      stops.push(started.stop);
      infra[kind] = { available: true, kind, url: started.url, origin: 'local' };
    } catch (err) {
      tried.push(`local: ${message(err)}`);
      infra[kind] = { available: false, kind, reason: tried.join('; ') };
    }
  }
  let stopped = false;
  return {
    infra,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
    },
  };
}

/**
 * What a test file does with missing services: skip it on a laptop, fail it under CI, where a
 * silent skip would hide a broken pipeline. Optional services (a real TimescaleDB) never fail.
 */
export function missingServicesVerdict(
  infra: Partial<Infrastructure>,
  needed: readonly ServiceKind[],
  options: { ci: boolean; optional?: boolean },
): { skip: boolean; error?: string; reason?: string } {
  const missing = needed
    .map(
      (kind) =>
        infra[kind] ?? { available: false as const, kind, reason: 'not resolved by global setup' },
    )
    .filter((s): s is UnavailableService => !s.available);
  if (missing.length === 0) return { skip: false };
  const reason = missing.map((s) => `${s.kind} unavailable (${s.reason})`).join('; ');
  if (options.ci && !options.optional) {
    return { skip: true, error: `CI=true and a needed service is missing: ${reason}` };
  }
  return { skip: true, reason };
}
