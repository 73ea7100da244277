import { describe, expect, it } from 'vitest';
import { dockerAvailable, freePort, probePostgres, probeRedis } from './probes.js';

describe('service probes', () => {
  it('say no quickly for ports where nothing listens', async () => {
    const port = await freePort();
    await expect(probePostgres(`postgres://postgres@127.0.0.1:${port}/postgres`)).rejects.toThrow(
      /ECONNREFUSED/,
    );
    await expect(probeRedis(`redis://127.0.0.1:${port}`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('find no Docker engine behind a socket that does not exist', async () => {
    expect(await dockerAvailable('unix:///nonexistent/docker.sock')).toBe(false);
  });
});
