export * from './metrics.js';
export * from './http.js';
export * from './lifecycle.js';
export * from './actor.js';
