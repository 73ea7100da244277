export * from './live-bars.js';
export * from './redis.js';
export * from './bar-chunks.js';
export * from './redis-gate.js';
