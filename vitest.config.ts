import { defineConfig } from 'vitest/config';

// Three tiers, named by file suffix (STYLE: tests beside the code). Integration and end-to-end
// tiers share infrastructure started once per run by the testkit's global setup.
const shared = {
  exclude: ['**/node_modules/**', '**/dist/**'],
};

export default defineConfig({
  test: {
    projects: [
      {
        test: { ...shared, name: 'unit', include: ['{packages,services}/*/src/**/*.unit.test.ts'] },
      },
      {
        test: {
          ...shared,
          name: 'int',
          include: ['{packages,services}/*/src/**/*.int.test.ts'],
          globalSetup: ['packages/testkit/src/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          ...shared,
          name: 'e2e',
          include: ['{packages,services}/*/src/**/*.e2e.test.ts'],
          globalSetup: ['packages/testkit/src/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
    benchmark: {
      include: ['{packages,services}/*/src/**/*.bench.ts'],
    },
  },
});
