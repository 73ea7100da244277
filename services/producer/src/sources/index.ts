import type { Clock } from '@candlestream/core';
import type { Logger } from '@candlestream/logger';
import type { ProducerConfig } from '../config.js';
import { resolvedSource } from '../config.js';
import { createCryptoCompareHistorySource } from './cryptocompare-rest.js';
import { createCryptoCompareWsSource } from './cryptocompare-ws.js';
import { createFileSource } from './file.js';
import type { TradeSource } from './source.js';
import { createSyntheticSource, DEFAULT_SYNTHETIC_SEED } from './synthetic.js';

export type { SourceRunOptions, SourceStatus, TradeSource } from './source.js';
export {
  createSyntheticModel,
  createSyntheticSource,
  DEFAULT_SYNTHETIC_SEED,
  syntheticCandles,
  type SyntheticModel,
  type SyntheticModelOptions,
} from './synthetic.js';
export { createFileSource } from './file.js';

/** The source the configuration asks for; config validation already checked what each needs. */
export function createSource(config: ProducerConfig, logger: Logger, clock: Clock): TradeSource {
  const log = logger.child({ component: 'source' });
  const cc = {
    apiKey: config.apiKey ?? '',
    symbols: config.symbols,
    logger: log,
    ...(config.exchange ? { exchange: config.exchange } : {}),
    ...(config.restUrl ? { restUrl: config.restUrl } : {}),
  };
  switch (resolvedSource(config)) {
    case 'cryptocompare':
      return createCryptoCompareWsSource({
        ...cc,
        clock,
        ...(config.wsUrl ? { wsUrl: config.wsUrl } : {}),
      });
    case 'cryptocompare-history':
      return createCryptoCompareHistorySource({
        ...cc,
        from: config.historyFrom ?? 0,
        to: config.historyTo ?? clock.now(),
        clock,
      });
    case 'file':
      return createFileSource({ path: config.tradesFile ?? '', logger: log });
    case 'synthetic':
      return createSyntheticSource({
        symbols: config.symbols,
        seed: config.syntheticSeed ?? DEFAULT_SYNTHETIC_SEED,
        tradesPerSecond: config.syntheticRate,
        clock,
        ...(config.syntheticStart === undefined ? {} : { startTs: config.syntheticStart }),
        ...(config.syntheticLimit === undefined ? {} : { limit: config.syntheticLimit }),
      });
  }
}
