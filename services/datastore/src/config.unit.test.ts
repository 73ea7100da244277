import { configProblems } from '@candlestream/config';
import { describe, expect, it } from 'vitest';
import { loadDatastoreConfig } from './config.js';

const ENV = { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/candlestream' };

describe('datastore config: TRUST_PROXY', () => {
  it('trusts no proxy when unset', () => {
    expect(loadDatastoreConfig(ENV).trustProxy).toBeUndefined();
  });

  it('takes addresses, subnets and proxy-addr range names, comma-separated', () => {
    const config = loadDatastoreConfig({
      ...ENV,
      TRUST_PROXY: 'loopback, 10.0.0.0/8,::1, fd00::/8',
    });
    expect(config.trustProxy).toEqual(['loopback', '10.0.0.0/8', '::1', 'fd00::/8']);
  });

  it('refuses anything else with one line naming the variable', () => {
    for (const value of ['true', '10.0.0.0/33', 'proxy.example.com', '1.2.3.4/8/8']) {
      let problems: string[] | undefined;
      try {
        loadDatastoreConfig({ ...ENV, TRUST_PROXY: value });
      } catch (err) {
        problems = configProblems(err);
      }
      expect(problems).toHaveLength(1);
      expect(problems?.[0]).toMatch(/^TRUST_PROXY has /);
    }
  });
});
