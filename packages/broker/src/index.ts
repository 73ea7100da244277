export { startBroker, type BrokerOptions, type RunningBroker } from './broker.js';
export { MAX_FRAME_BYTES } from './server.js';
export { ManualClock, systemClock, type Clock, type Timer } from './clock.js';
export { crc32c } from './records/crc32c.js';
