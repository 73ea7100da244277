export { createKafka, ensureTopics, type KafkaClient, type KafkaOptions } from './client.js';
export { TOPICS, DLQ_HEADERS, type TopicSpec } from './topics.js';
export { KafkaPublisher, type OutgoingMessage } from './producer.js';
export { BatchingPublisher, type BatchingOptions } from './batching.js';
export {
  BatchConsumer,
  type BatchConsumerOptions,
  type BatchContext,
  type BatchHandler,
  type ConsumedBatch,
  type ConsumedMessage,
} from './consumer.js';
