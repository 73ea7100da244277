export * from './http-load.js';
export * from './infra.js';
export * from './resources.js';
export * from './services.js';
export { LOCAL_POSTGRES_URL, LOCAL_REDIS_URL, probePostgres, probeRedis } from './probes.js';
export * from './processes.js';
export * from './wait.js';
