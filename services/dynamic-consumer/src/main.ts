/** The dynamic consumer: what backfill jobs fetched into their topics, stored into the base series. */
import { createLogger } from '@candlestream/logger';
import { runService } from '@candlestream/runtime';
import { loadDynamicConsumerConfig } from './config.js';
import { SERVICE_NAME, startDynamicConsumer } from './service.js';

runService(SERVICE_NAME, async () => {
  const config = loadDynamicConsumerConfig();
  const logger = createLogger({ service: SERVICE_NAME, level: config.logLevel });
  const service = await startDynamicConsumer(config, logger);
  return { service, logger };
});
