export { loadFixedConsumerConfig, type FixedConsumerConfig } from './config.js';
export { startFixedConsumer, SERVICE_NAME, type FixedConsumer } from './service.js';
export { PUBLISHED_AT_HEADER } from './pipeline.js';
export { fixedConsumerMachine } from './fixed-consumer.machine.js';
