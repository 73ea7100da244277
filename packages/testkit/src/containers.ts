import type { ServiceKind, Started } from './infra.js';
import { freePort } from './probes.js';

/** Pinned images, so a run next year tests against the same servers. */
export const IMAGES: Readonly<Record<Exclude<ServiceKind, 'pglite'>, string>> = {
  postgres: 'postgres:15.10',
  timescaledb: 'timescale/timescaledb:2.17.2-pg16',
  redis: 'redis:7.4.1-alpine',
  kafka: 'docker.redpanda.com/redpandadata/redpanda:v24.2.13',
};

const POSTGRES_PASSWORD = 'candlestream';

/**
 * Starts one service in a container. testcontainers is imported only here and only when a
 * Docker engine answered, so machines without one never load it.
 */
export async function startContainer(kind: ServiceKind): Promise<Started> {
  if (kind === 'pglite') throw new Error('PGlite runs in-process, not in a container');
  const { GenericContainer, Wait } = await import('testcontainers');
  switch (kind) {
    case 'postgres':
    case 'timescaledb': {
      const container = await new GenericContainer(IMAGES[kind])
        .withEnvironment({ POSTGRES_PASSWORD })
        .withExposedPorts(5432)
        .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
        .start();
      const url = `postgres://postgres:${POSTGRES_PASSWORD}@${container.getHost()}:${container.getMappedPort(5432)}/postgres`;
      return { url, stop: async () => void (await container.stop()) };
    }
    case 'redis': {
      const container = await new GenericContainer(IMAGES.redis)
        .withExposedPorts(6379)
        .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
        .start();
      const url = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
      return { url, stop: async () => void (await container.stop()) };
    }
    case 'kafka': {
      // Redpanda advertises the address clients must use, so fix the host port before start.
      const port = await freePort();
      const container = await new GenericContainer(IMAGES.kafka)
        .withExposedPorts({ container: 9092, host: port })
        .withCommand([
          'redpanda',
          'start',
          '--mode',
          'dev-container',
          '--smp',
          '1',
          '--kafka-addr',
          '0.0.0.0:9092',
          '--advertise-kafka-addr',
          `127.0.0.1:${port}`,
        ])
        .withWaitStrategy(Wait.forLogMessage(/Successfully started Redpanda!/))
        .start();
      return { url: `127.0.0.1:${port}`, stop: async () => void (await container.stop()) };
    }
  }
}
