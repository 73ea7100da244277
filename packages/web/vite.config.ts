import { defineConfig } from 'vite';

// Built once by `pnpm install` (root postinstall) into dist/, served by the datastore at `/`.
export default defineConfig({
  root: 'src/page',
  base: '/',
  build: { outDir: '../../dist', emptyOutDir: true, sourcemap: true, target: 'es2022' },
  server: {
    proxy: {
      '/udf': 'http://localhost:3000',
      '/stream': { target: 'ws://localhost:3000', ws: true },
    },
  },
});
