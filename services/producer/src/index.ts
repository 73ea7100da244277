export { loadProducerConfig, resolvedSource, type ProducerConfig } from './config.js';
export { startProducer, SERVICE_NAME, type Producer } from './service.js';
export { producerMachine } from './producer.machine.js';
export {
  createFileSource,
  createSyntheticModel,
  createSyntheticSource,
  syntheticCandles,
  type SyntheticModel,
  type TradeSource,
} from './sources/index.js';
export type { FileSourceOptions, TradeFileFormat } from './sources/file.js';
