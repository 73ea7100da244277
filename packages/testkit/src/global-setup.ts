/**
 * vitest globalSetup for the int and e2e tiers: resolves every service once per run and hands
 * the addresses to test files through `provide`/`inject`. Tests isolate themselves inside them.
 */
import type { TestProject } from 'vitest/node';
import { startContainer } from './containers.js';
import type { Infrastructure } from './infra.js';
import { resolveInfrastructure } from './infra.js';
import { dockerAvailable, startLocal } from './probes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    candlestreamInfra: Infrastructure;
    candlestreamCi: boolean;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = process.env;
  const resolved = await resolveInfrastructure({
    env,
    dockerAvailable: () => dockerAvailable(env['DOCKER_HOST']),
    startContainer,
    startLocal,
  });
  project.provide('candlestreamInfra', resolved.infra);
  project.provide('candlestreamCi', env['CI'] === 'true' || env['CI'] === '1');
  const summary = Object.values(resolved.infra)
    .map((s) => (s.available ? `${s.kind}=${s.origin}` : `${s.kind}=unavailable`))
    .join(' ');
  process.stdout.write(`[testkit] ${project.name}: ${summary}\n`);
  return () => resolved.stop();
}
