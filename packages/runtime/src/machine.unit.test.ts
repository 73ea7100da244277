import { describe, expect, it } from 'vitest';
import type { HealthTag } from './machine.js';
import { healthFromTags } from './machine.js';

const tagged = (...tags: HealthTag[]) => ({ hasTag: (t: HealthTag) => tags.includes(t) });

describe('healthFromTags', () => {
  it('reads the state tags: down over degraded over healthy, untagged is down', () => {
    expect(healthFromTags(tagged('healthy'))).toBe('ok');
    expect(healthFromTags(tagged('healthy', 'degraded'))).toBe('degraded');
    expect(healthFromTags(tagged('degraded', 'down'))).toBe('down');
    expect(healthFromTags(tagged())).toBe('down');
  });
});
