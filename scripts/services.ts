/**
 * The command of every process the platform runs, in one place: `pnpm start` (start.ts) runs
 * them from source as child processes; docker-compose.yml and the Dockerfile run the same entries
 * compiled by `pnpm build`. A test keeps compose equal to `compiledCommandOf`.
 */
export const NODE_WITH_TSX = ['node', '--import', 'tsx'] as const;

/**
 * Plain node on the build output. Workspace packages export `./src/*.ts` by default and
 * `./dist/*.js` under this condition (Node's `--conditions`, the same name as `customConditions`
 * in each tsconfig.build.json), so compiled code only ever imports compiled code.
 */
export const COMPILED_CONDITION = 'compiled';
export const NODE_COMPILED = ['node', `--conditions=${COMPILED_CONDITION}`] as const;

/** Source entries; each compiles to the same path under `dist/` (tsconfig.build.json: src → dist). */
export const ENTRIES = {
  broker: 'packages/broker/src/main.ts',
  migrate: 'packages/db/src/main.ts',
  'fixed-consumer': 'services/fixed-consumer/src/main.ts',
  coordinator: 'services/coordinator/src/main.ts',
  'dynamic-consumer': 'services/dynamic-consumer/src/main.ts',
  producer: 'services/producer/src/main.ts',
  datastore: 'services/datastore/src/main.ts',
  simulator: 'services/simulator/src/main.ts',
} as const;

export type ProcessName = keyof typeof ENTRIES;

/** Where `pnpm build` puts a process's entry: `<package>/src/x.ts` → `<package>/dist/x.js`. */
export function compiledEntryOf(name: ProcessName): string {
  return ENTRIES[name].replace(/\/src\/(.*)\.ts$/, '/dist/$1.js');
}

/** The command line of one process from source, as `pnpm start` runs it. */
export function sourceCommandOf(name: ProcessName): string[] {
  return [...NODE_WITH_TSX, ENTRIES[name]];
}

/** The command line of one process from the build output, as compose and the image run it. */
export function compiledCommandOf(name: ProcessName): string[] {
  return [...NODE_COMPILED, compiledEntryOf(name)];
}
