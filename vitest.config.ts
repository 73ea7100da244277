import { defineConfig } from 'vitest/config';

// Three tiers, named by file suffix (STYLE: tests beside the code). Integration and end-to-end
// tiers share infrastructure started once per run by the testkit's global setup.
const shared = {
  exclude: ['**/node_modules/**', '**/dist/**'],
  // Benchmarks belong to the bench project alone, or each tier would run them again.
  benchmark: { include: [] },
};
const globalSetup = ['packages/testkit/src/global-setup.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          ...shared,
          name: 'unit',
          include: ['{packages,services}/*/src/**/*.unit.test.ts', 'scripts/**/*.unit.test.ts'],
        },
      },
      {
        test: {
          ...shared,
          name: 'int',
          include: ['{packages,services}/*/src/**/*.int.test.ts'],
          globalSetup,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          ...shared,
          name: 'e2e',
          include: ['{packages,services}/*/src/**/*.e2e.test.ts', 'scripts/**/*.e2e.test.ts'],
          globalSetup,
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        // `pnpm bench`: figures beside their baselines, measured in the same run.
        test: {
          name: 'bench',
          include: [],
          globalSetup,
          benchmark: { include: ['{packages,services}/*/src/**/*.bench.ts'] },
          hookTimeout: 180_000,
          // One bench file at a time: side by side on two cores they would measure each other.
          fileParallelism: false,
        },
      },
    ],
  },
});
