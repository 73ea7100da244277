import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where `pnpm --filter @candlestream/web build` (run by `pnpm install`) puts the page. */
export const WEB_DIST_DIR = fileURLToPath(new URL('../dist/', import.meta.url));

/** The built page's entry, if it has been built. */
export function builtPage(): string | undefined {
  const index = `${WEB_DIST_DIR}index.html`;
  return existsSync(index) ? index : undefined;
}

/** The folder a licensed TradingView Charting Library is placed in (see docs/CHART.md). */
export const CHARTING_LIBRARY_DIR = fileURLToPath(new URL('../charting_library/', import.meta.url));
