export {
  createDatafeed,
  streamUrl,
  DEFAULT_RECONNECT,
  DEFAULT_STALE_AFTER_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './datafeed.js';
export type * from './types.js';
