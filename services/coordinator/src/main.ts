/** The coordinator: plans backfills, creates their topics, drives them to their end. */
import { createLogger } from '@candlestream/logger';
import { runService } from '@candlestream/runtime';
import { loadCoordinatorConfig } from './config.js';
import { SERVICE_NAME, startCoordinator } from './service.js';

runService(SERVICE_NAME, async () => {
  const config = loadCoordinatorConfig();
  const logger = createLogger({ service: SERVICE_NAME, level: config.logLevel });
  const service = await startCoordinator(config, logger);
  return { service, logger };
});
