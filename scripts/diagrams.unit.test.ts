import { readFileSync } from 'node:fs';
import { format } from 'prettier';
import { describe, expect, it } from 'vitest';
import { MACHINES_DOC, renderMachines } from './diagrams.js';

describe('docs/MACHINES.md', () => {
  it('is what the machine definitions render to now (run pnpm diagrams after changing a machine)', async () => {
    const fresh = await format(renderMachines(), { filepath: MACHINES_DOC, proseWrap: 'preserve' });
    const committed = await format(readFileSync(MACHINES_DOC, 'utf8'), {
      filepath: MACHINES_DOC,
      proseWrap: 'preserve',
    });
    expect(committed).toBe(fresh);
    // Every state of every machine appears, so a renamed or added state shows up here.
    for (const state of [
      'streaming_degraded',
      'consuming_degraded',
      'restoring',
      'backingOff',
      'live',
      'failed',
    ]) {
      expect(committed).toContain(state);
    }
  });
});
