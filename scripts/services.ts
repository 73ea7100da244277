/**
 * The command of every process the platform runs, in one place: `pnpm start` (start.ts) runs
 * them as child processes and docker-compose.yml as containers; a test keeps the two equal.
 */
export const NODE_WITH_TSX = ['node', '--import', 'tsx'] as const;

export const ENTRIES = {
  broker: 'packages/broker/src/main.ts',
  migrate: 'packages/db/src/main.ts',
  'fixed-consumer': 'services/fixed-consumer/src/main.ts',
  producer: 'services/producer/src/main.ts',
  datastore: 'services/datastore/src/main.ts',
} as const;

export type ProcessName = keyof typeof ENTRIES;

/** The command line of one process, as compose writes it. */
export function commandOf(name: ProcessName): string[] {
  return [...NODE_WITH_TSX, ENTRIES[name]];
}
