/** The fixed consumer: every trade of tick-data into the database, and the live candles out. */
import { createLogger } from '@candlestream/logger';
import { runService } from '@candlestream/runtime';
import { loadFixedConsumerConfig } from './config.js';
import { SERVICE_NAME, startFixedConsumer } from './service.js';

runService(SERVICE_NAME, async () => {
  const config = loadFixedConsumerConfig();
  const logger = createLogger({ service: SERVICE_NAME, level: config.logLevel });
  const service = await startFixedConsumer(config, logger);
  return { service, logger };
});
