export { expandMinute, EXPANDED_TRADE_OFFSETS_MS, ZERO_VOLUME_TRADE_SIZE } from './expand.js';
export { DEFAULT_REORDER_WINDOW_TRADES, fileHistory, type FileHistoryOptions } from './file.js';
export { compareReplay } from './order.js';
export { DEFAULT_PAGE_TRADES, storedHistory, type StoredHistoryOptions } from './stored.js';
