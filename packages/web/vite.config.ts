import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** A licensed Charting Library placed here (docs/CHART.md) is used if present at build time. */
const CHARTING_LIBRARY = fileURLToPath(
  new URL('charting_library/charting_library.standalone.js', import.meta.url),
);

// Built once by `pnpm install` (root postinstall) into dist/, served by the datastore at `/`.
export default defineConfig({
  root: 'src/page',
  base: '/',
  // Decided here rather than probed by the page, so a page without the library asks for nothing
  // (a probe would log a 404 on every load). Copying the library in means building again.
  define: { __CHARTING_LIBRARY__: JSON.stringify(existsSync(CHARTING_LIBRARY)) },
  build: { outDir: '../../dist', emptyOutDir: true, sourcemap: true, target: 'es2022' },
  server: {
    proxy: {
      '/udf': 'http://localhost:3000',
      '/stream': { target: 'ws://localhost:3000', ws: true },
    },
  },
});
