import { describe, expect, it } from 'vitest';
import type { InfraDeps, ServiceKind } from './infra.js';
import { missingServicesVerdict, resolveInfrastructure } from './infra.js';

function deps(overrides: Partial<InfraDeps> & { calls?: string[] } = {}): InfraDeps {
  const calls = overrides.calls ?? [];
  return {
    env: {},
    dockerAvailable: () => Promise.resolve(false),
    startContainer: (kind) => {
      calls.push(`container:${kind}`);
      return Promise.resolve({
        url: `container://${kind}`,
        stop: () => Promise.resolve(calls.push(`stop-container:${kind}`)).then(() => undefined),
      });
    },
    startLocal: (kind) => {
      calls.push(`local:${kind}`);
      return Promise.resolve({
        url: `local://${kind}`,
        stop: () => Promise.resolve(calls.push(`stop-local:${kind}`)).then(() => undefined),
      });
    },
    ...overrides,
  };
}

describe('resolveInfrastructure', () => {
  it('prefers URLs from the environment and starts nothing for them', async () => {
    const calls: string[] = [];
    const { infra } = await resolveInfrastructure(
      deps({
        calls,
        env: { DATABASE_URL: 'postgres://elsewhere/db', KAFKA_BROKERS: 'k:9092' },
        dockerAvailable: () => Promise.resolve(true),
      }),
      ['postgres', 'kafka'],
    );
    expect(infra.postgres).toEqual({
      available: true,
      kind: 'postgres',
      url: 'postgres://elsewhere/db',
      origin: 'env',
    });
    expect(infra.kafka).toMatchObject({ url: 'k:9092', origin: 'env' });
    expect(calls).toEqual([]);
  });

  it('uses containers when a Docker engine answers, and stops them newest first', async () => {
    const calls: string[] = [];
    const resolved = await resolveInfrastructure(
      deps({ calls, dockerAvailable: () => Promise.resolve(true) }),
      ['postgres', 'redis'],
    );
    expect(resolved.infra.redis).toMatchObject({ origin: 'container', url: 'container://redis' });
    await resolved.stop();
    await resolved.stop();
    expect(calls).toEqual([
      'container:postgres',
      'container:redis',
      'stop-container:redis',
      'stop-container:postgres',
    ]);
  });

  it('falls back to this machine without Docker, or when a container fails', async () => {
    const calls: string[] = [];
    const { infra } = await resolveInfrastructure(
      deps({
        calls,
        dockerAvailable: () => Promise.resolve(true),
        startContainer: (kind) => Promise.reject(new Error(`no image for ${kind}`)),
      }),
      ['redis'],
    );
    expect(infra.redis).toMatchObject({ origin: 'local', url: 'local://redis' });
    expect(calls).toEqual(['local:redis']);
  });

  it('reports every place it tried when nothing answers', async () => {
    const { infra } = await resolveInfrastructure(
      deps({
        startLocal: (kind: ServiceKind) => Promise.reject(new Error(`${kind} does not answer`)),
      }),
      ['postgres'],
    );
    expect(infra.postgres).toEqual({
      available: false,
      kind: 'postgres',
      reason: 'DATABASE_URL is not set; no Docker engine answers; local: postgres does not answer',
    });
  });

  it('asks about Docker once, treating a failing probe as no Docker', async () => {
    let probes = 0;
    const { infra } = await resolveInfrastructure(
      deps({ dockerAvailable: () => (probes++, Promise.reject(new Error('boom'))) }),
      ['postgres', 'redis'],
    );
    expect(probes).toBe(1);
    expect(infra.postgres.available && infra.postgres.origin).toBe('local');
  });
});

describe('missingServicesVerdict', () => {
  const infra = {
    postgres: {
      available: true as const,
      kind: 'postgres' as const,
      url: 'x',
      origin: 'local' as const,
    },
    kafka: { available: false as const, kind: 'kafka' as const, reason: 'no broker' },
  };

  it('runs the tests when everything is there', () => {
    expect(missingServicesVerdict(infra, ['postgres'], { ci: true })).toEqual({ skip: false });
  });

  it('skips with the reason off CI', () => {
    expect(missingServicesVerdict(infra, ['postgres', 'kafka'], { ci: false })).toEqual({
      skip: true,
      reason: 'kafka unavailable (no broker)',
    });
  });

  it('fails under CI, unless the service is optional', () => {
    expect(missingServicesVerdict(infra, ['kafka'], { ci: true }).error).toMatch(
      /CI=true and a needed service is missing: kafka unavailable/,
    );
    expect(missingServicesVerdict(infra, ['kafka'], { ci: true, optional: true })).toEqual({
      skip: true,
      reason: 'kafka unavailable (no broker)',
    });
    expect(missingServicesVerdict({}, ['redis'], { ci: true }).error).toMatch(
      /not resolved by global setup/,
    );
  });
});
