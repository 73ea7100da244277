export { loadDynamicConsumerConfig, type DynamicConsumerConfig } from './config.js';
export { startDynamicConsumer, SERVICE_NAME, type DynamicConsumer } from './service.js';
export { dynamicConsumerMachine } from './dynamic-consumer.machine.js';
