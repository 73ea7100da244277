/** The producer: trades from the configured source onto tick-data. */
import { createLogger } from '@candlestream/logger';
import { runService } from '@candlestream/runtime';
import { loadProducerConfig } from './config.js';
import { SERVICE_NAME, startProducer } from './service.js';

runService(SERVICE_NAME, async () => {
  const config = loadProducerConfig();
  const logger = createLogger({ service: SERVICE_NAME, level: config.logLevel });
  const service = await startProducer(config, logger);
  return { service, logger };
});
