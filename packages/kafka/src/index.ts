export {
  createKafka,
  deleteTopics,
  ensureTopics,
  listTopics,
  type KafkaClient,
  type KafkaOptions,
} from './client.js';
export {
  TOPICS,
  DLQ_HEADERS,
  backfillTopic,
  replayTopic,
  REPLAY_RETENTION_MS,
  type TopicSpec,
} from './topics.js';
export {
  isRefusedByBroker,
  KafkaPublisher,
  MAX_PRODUCE_REQUEST_BYTES,
  recordBytes,
  singleRecordBatchBytes,
  splitForProduce,
  type OutgoingMessage,
  type PublisherOptions,
} from './producer.js';
export { fitDeadLetter } from './dead-letters.js';
export { ConsumerLagReader, watchBroker, type BrokerWatchOptions } from './health.js';
export { BatchingPublisher, type BatchingOptions } from './batching.js';
export {
  BatchConsumer,
  type BatchConsumerOptions,
  type BatchContext,
  type BatchHandler,
  type ConsumedBatch,
  type ConsumedMessage,
} from './consumer.js';
export { readTopicTail, type TopicTailOptions } from './tail.js';
export { consumeInActor, type ActorConsumerOptions } from './actor-consumer.js';
export { TopicCollector, type TopicCollectorOptions } from './collector.js';
