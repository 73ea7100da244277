export * from './metrics.js';
export * from './http.js';
export * from './lifecycle.js';
export * from './actor.js';
export * from './service.js';
export * from './feed.js';
export * from './retrying.js';
export * from './connect.js';
