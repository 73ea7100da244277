export * from './live-bars.js';
export * from './redis.js';
