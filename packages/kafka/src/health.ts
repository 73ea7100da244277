import type { Admin, Kafka } from 'kafkajs';
import type { Clock, TimerHandle } from '@candlestream/core';
import { systemClock } from '@candlestream/core';

/**
 * Rejects with `what timed out` if `work` has not settled within `timeoutMs` on `clock` (a real
 * wait on the broker: production's clock is the system one).
 */
function withTimeout<T>(
  work: Promise<T>,
  timeoutMs: number,
  what: string,
  clock: Clock,
): Promise<T> {
  let timer: TimerHandle | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(
      () => reject(new Error(`${what} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  return Promise.race([work, timeout]).finally(() => clock.clearTimeout(timer));
}

/**
 * An admin client that fails fast: one try per request (the caller asks again on its own
 * schedule), so a broker that is gone shows at once instead of after kafkajs' retries.
 */
class FastAdmin {
  readonly #kafka: Kafka;
  #admin: Admin | undefined;
  #connecting: Promise<Admin> | undefined;

  constructor(kafka: Kafka) {
    this.#kafka = kafka;
  }

  get(): Promise<Admin> {
    this.#connecting ??= (async () => {
      const admin = this.#kafka.admin({ retry: { retries: 0 } });
      try {
        await admin.connect();
      } catch (err) {
        this.#connecting = undefined;
        await admin.disconnect().catch(() => undefined);
        throw err;
      }
      this.#admin = admin;
      return admin;
    })();
    return this.#connecting;
  }

  async close(): Promise<void> {
    const admin = this.#admin ?? (await this.#connecting?.catch(() => undefined));
    this.#admin = undefined;
    this.#connecting = undefined;
    await admin?.disconnect().catch(() => undefined);
  }
}

/**
 * How far a consumer group is behind a topic, per partition: the high watermark minus the
 * group's committed offset (a partition with nothing committed counts from its log start, as a
 * group reading from the beginning does). Asked of the broker each time, so it is right while
 * the consumer is stuck or slow, which is when it matters.
 */
export class ConsumerLagReader {
  readonly #admin: FastAdmin;
  readonly #groupId: string;
  readonly #topic: string;
  readonly #timeoutMs: number;
  readonly #clock: Clock;

  constructor(
    kafka: Kafka,
    options: { groupId: string; topic: string; timeoutMs?: number; clock?: Clock },
  ) {
    this.#admin = new FastAdmin(kafka);
    this.#groupId = options.groupId;
    this.#topic = options.topic;
    this.#timeoutMs = options.timeoutMs ?? 2_000;
    this.#clock = options.clock ?? systemClock;
  }

  async read(): Promise<Map<number, number>> {
    const work = (async () => {
      const admin = await this.#admin.get();
      const [ends, groups] = await Promise.all([
        admin.fetchTopicOffsets(this.#topic),
        admin.fetchOffsets({ groupId: this.#groupId, topics: [this.#topic] }),
      ]);
      const committed = new Map<number, bigint>();
      for (const p of groups.find((g) => g.topic === this.#topic)?.partitions ?? []) {
        if (BigInt(p.offset) >= 0n) committed.set(p.partition, BigInt(p.offset));
      }
      const lag = new Map<number, number>();
      for (const p of ends) {
        const from = committed.get(p.partition) ?? BigInt(p.low);
        const behind = BigInt(p.high) - from;
        lag.set(p.partition, Number(behind > 0n ? behind : 0n));
      }
      return lag;
    })();
    return withTimeout(work, this.#timeoutMs, 'reading the consumer lag', this.#clock);
  }

  close(): Promise<void> {
    return this.#admin.close();
  }
}

export interface BrokerWatchOptions {
  /** Time between probes. */
  intervalMs?: number;
  /** A probe not answered within this is a failure. */
  timeoutMs?: number;
  /** Called when the broker stops answering (with why) and when it answers again (undefined). */
  onChange: (problem: string | undefined) => void;
  /** The probe period and timeout run on it; default systemClock. */
  clock?: Clock;
}

/**
 * Defaults: a killed broker shows within interval + timeout = 1.5 s, ahead of the consumer's own
 * crash (kafkajs gives up after its retries, 2.5-6 s), so /health names the broker.
 */
export const BROKER_PROBE_INTERVAL_MS = 500;
export const BROKER_PROBE_TIMEOUT_MS = 1_000;

/**
 * Probes the cluster with a Metadata request (kafkajs `describeCluster`, one try) on a fixed
 * period and reports changes. A consumer alone notices a dead broker only when kafkajs has spent
 * its retries (5-6 s, then it crashes); this notices within one probe. Returns the stop function.
 */
export function watchBroker(kafka: Kafka, options: BrokerWatchOptions): () => void {
  const intervalMs = options.intervalMs ?? BROKER_PROBE_INTERVAL_MS;
  const timeoutMs = options.timeoutMs ?? BROKER_PROBE_TIMEOUT_MS;
  const clock = options.clock ?? systemClock;
  const admin = new FastAdmin(kafka);
  let stopped = false;
  let timer: TimerHandle | undefined;
  let problem: string | undefined;
  const report = (next: string | undefined): void => {
    if (stopped || next === problem) return;
    problem = next;
    options.onChange(next);
  };
  const probe = (): void => {
    withTimeout(
      admin.get().then((a) => a.describeCluster()),
      timeoutMs,
      'broker probe',
      clock,
    )
      .then(
        () => report(undefined),
        (err: unknown) => {
          report(`broker not answering: ${err instanceof Error ? err.message : String(err)}`);
          // A connection the broker dropped is not reused; the next probe connects afresh.
          void admin.close();
        },
      )
      .finally(() => {
        if (!stopped) timer = clock.setTimeout(probe, intervalMs);
      });
  };
  timer = clock.setTimeout(probe, intervalMs);
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
    void admin.close();
  };
}
