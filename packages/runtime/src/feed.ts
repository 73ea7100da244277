/**
 * Values one part of a service produces (a buffer's or a pipeline's health) for whichever actor
 * runs right now: the actor subscribes when it starts and unsubscribes in its cleanup, and turns
 * what it hears into events with its own `sendBack`. Nothing outside the machine sends to it.
 */
export class Feed<T> {
  readonly #listeners = new Set<(value: T) => void>();

  /** Returns the unsubscribe function, for the actor's cleanup. */
  subscribe(listener: (value: T) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** With no actor listening the value is dropped: the state's tag says enough then. */
  publish(value: T): void {
    for (const listener of [...this.#listeners]) listener(value);
  }
}

/**
 * Stops a `fromCallback` actor started but could not await (its cleanup is synchronous), such as
 * a consumer leaving its group. The actor keeps its resource and only hands over the stop; the
 * next start and the shutdown wait for `settled()`, so a new member never overlaps the old one
 * and pools never close under a running handler.
 */
export class PendingStops {
  readonly #pending = new Set<Promise<void>>();

  add(stop: Promise<unknown>): void {
    const settled = stop.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
  }

  /** Resolves once every stop handed over so far has finished (failed ones included). */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
