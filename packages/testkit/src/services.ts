import { inject } from 'vitest';
import type { AvailableService, ServiceKind } from './infra.js';
import { missingServicesVerdict } from './infra.js';

export interface NeededServices<K extends ServiceKind> {
  /** True when a needed service is missing and this is not CI: use with `describe.skipIf`. */
  skip: boolean;
  reason: string | undefined;
  /** The service's address; throws if called while `skip` is true. */
  get(kind: K): AvailableService;
}

/**
 * Declares which services a test file needs, at collection time. Missing ones skip the file on
 * a laptop (with the reason printed) and fail it under CI=true.
 */
export function needServices<K extends ServiceKind>(
  kinds: readonly K[],
  options: { optional?: boolean } = {},
): NeededServices<K> {
  const infra = inject('candlestreamInfra');
  const ci = inject('candlestreamCi');
  const verdict = missingServicesVerdict(infra, kinds, { ci, ...options });
  if (verdict.error) throw new Error(verdict.error);
  if (verdict.reason) process.stderr.write(`[testkit] skipping: ${verdict.reason}\n`);
  return {
    skip: verdict.skip,
    reason: verdict.reason,
    get(kind) {
      const service = infra[kind];
      if (!service.available) throw new Error(`${kind} is unavailable: ${service.reason}`);
      return service;
    },
  };
}

/**
 * For a test that needs something other than a service (a browser, a built asset): skips with the
 * reason on a laptop, throws under CI=true, like a missing service. Returns whether to skip.
 */
export function needPrerequisite(missing: string | undefined): boolean {
  if (missing === undefined) return false;
  if (inject('candlestreamCi')) throw new Error(`missing under CI: ${missing}`);
  process.stderr.write(`[testkit] skipping: ${missing}\n`);
  return true;
}
