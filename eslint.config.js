// ESLint flat config: typescript-eslint's type-checked rules over the whole workspace.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', '.data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Unawaited promises lose errors silently; with kafkajs and actors that means lost data.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      // Only config loaders read the environment (STYLE: one config loader).
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read configuration through a config.ts loader.',
        },
      ],
    },
  },
  {
    // Config loaders, the test harness and root scripts are where the environment is read.
    files: ['**/config.ts', 'packages/testkit/**', 'scripts/**', '*.config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // Machines are pure: their I/O arrives through setup({ actors }) and .provide().
    files: ['**/*.machine.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Machines are pure; do I/O in actors/.' },
            {
              group: ['kafkajs', 'ioredis', 'sequelize', 'pg', 'pg-*'],
              message: 'Machines are pure; do I/O in actors/.',
            },
            {
              // Our own I/O wrappers count as I/O too.
              group: [
                '@candlestream/kafka',
                '@candlestream/kafka/*',
                '@candlestream/db',
                '@candlestream/db/*',
                '@candlestream/cache',
                '@candlestream/cache/*',
              ],
              message: 'Machines are pure; do I/O in actors/ (kafka, db and cache are I/O).',
            },
          ],
        },
      ],
    },
  },
  {
    // expect.objectContaining() and friends are typed `any` by design.
    files: ['**/*.test.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Plain Node scripts (CI helpers) outside any tsconfig.
    files: ['**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  prettier,
);
