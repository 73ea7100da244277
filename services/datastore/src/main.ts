/** The datastore: /ohlcv, the UDF protocol, /stream, and (with issue 7) the chart page. */
import { createLogger } from '@candlestream/logger';
import { runService } from '@candlestream/runtime';
import { loadDatastoreConfig } from './config.js';
import { SERVICE_NAME, startDatastore } from './service.js';

runService(SERVICE_NAME, async () => {
  const config = loadDatastoreConfig();
  const logger = createLogger({ service: SERVICE_NAME, level: config.logLevel });
  const service = await startDatastore(config, logger);
  return { service, logger };
});
