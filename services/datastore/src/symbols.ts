import type { Clock, MarketSymbol } from '@candlestream/core';
import type { Repository } from '@candlestream/db';

/** How long the list of stored symbols is trusted before it is read again. */
export const SYMBOLS_REFRESH_MS = 30_000;

/** The symbols the API knows: the configured ones and every symbol with stored bars. */
export class SymbolRegistry {
  readonly #configured: readonly MarketSymbol[];
  readonly #repository: Repository;
  readonly #clock: Clock;
  #stored = new Set<MarketSymbol>();
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<void> | undefined;

  constructor(configured: readonly MarketSymbol[], repository: Repository, clock: Clock) {
    this.#configured = configured;
    this.#repository = repository;
    this.#clock = clock;
  }

  async list(): Promise<MarketSymbol[]> {
    await this.#refresh();
    return [...new Set([...this.#configured, ...this.#stored])].sort();
  }

  async has(symbol: MarketSymbol): Promise<boolean> {
    if (this.#configured.includes(symbol) || this.#stored.has(symbol)) return true;
    await this.#refresh(true);
    return this.#stored.has(symbol);
  }

  /** At most one read at a time; `force` still waits SYMBOLS_REFRESH_MS / 10 between reads. */
  async #refresh(force = false): Promise<void> {
    const age = this.#clock.now() - this.#readAt;
    if (age < (force ? SYMBOLS_REFRESH_MS / 10 : SYMBOLS_REFRESH_MS)) return;
    this.#reading ??= (async () => {
      try {
        this.#stored = new Set((await this.#repository.lastBuckets()).keys());
        this.#readAt = this.#clock.now();
      } finally {
        this.#reading = undefined;
      }
    })();
    await this.#reading;
  }
}
