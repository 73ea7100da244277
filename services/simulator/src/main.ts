/** The simulator service: hosts the chart's replay sessions (docs/REPLAY.md). */
import { createLogger } from '@candlestream/logger';
import { runService } from '@candlestream/runtime';
import { loadSimulatorConfig } from './config.js';
import { SERVICE_NAME, startSimulator } from './service.js';

runService(SERVICE_NAME, async () => {
  const config = loadSimulatorConfig();
  const logger = createLogger({ service: SERVICE_NAME, level: config.logLevel });
  const service = await startSimulator(config, logger);
  return { service, logger };
});
