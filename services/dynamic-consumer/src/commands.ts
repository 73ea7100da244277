import type { Clock } from '@candlestream/core';
import { AppError, decodeBackfillCommand } from '@candlestream/core';
import type { BatchContext, ConsumedBatch } from '@candlestream/kafka';
import type { Logger } from '@candlestream/logger';
import type { Counter } from '@candlestream/runtime';
import type { JobDeps, JobOutcome, JobProgress } from './job.js';
import { BackfillJob } from './job.js';
import { HEARTBEAT_WHILE_WAITING_MS } from '@candlestream/runtime';

export interface CommandsOptions {
  jobs: JobDeps;
  /** Heartbeats while a batch is held run on it (real waiting). */
  waitClock: Clock;
  logger: Logger;
  metrics: { malformed: Counter; started: Counter; ended: Counter };
}

/**
 * What the dynamic consumer does with a batch of backfill-commands: runs the job of every command
 * in it at once and resolves (so the consumer commits the commands) only when all of them ended.
 *
 * Why hold the batch: a command's offset may be committed only after its job ended, so that a
 * killed consumer gets the command again and the job's group resumes after its last commit
 * (docs/BACKFILLS.md, Restarts). The batch consumer commits a batch when its handler resolves,
 * so the handler waits for the jobs, heartbeating meanwhile so the group keeps the member. The
 * jobs of one batch (every command on the partition when it was fetched) run concurrently; a
 * command arriving while they run waits for them. Committing each command as its own job ends
 * would need offsets committed out of order, which a Kafka group cannot hold (one offset per
 * partition), and a second, look-ahead consumer would start jobs its instance's command
 * consumer may not own. See docs/ARCHITECTURE.md.
 */
export class CommandHandler {
  readonly #o: CommandsOptions;
  readonly #log: Logger;
  readonly #running = new Map<string, BackfillJob>();

  constructor(options: CommandsOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'commands' });
  }

  /** The jobs storing right now, for /health. */
  running(): JobProgress[] {
    return [...this.#running.values()].map((job) => job.progress());
  }

  async handleBatch(batch: ConsumedBatch, { heartbeat, signal }: BatchContext): Promise<void> {
    if (signal.aborted) throw new AppError('CANCELLED', 'consumer stopped before the batch ran');
    // Aborted when the consumer stops or a job crashed: the others stop too, uncommitted.
    const abort = new AbortController();
    const stop = (): void => abort.abort(signal.reason);
    signal.addEventListener('abort', stop, { once: true });
    const jobs = new Map<string, Promise<JobOutcome>>();
    const beat = this.#o.waitClock.setInterval(() => {
      heartbeat().catch((err: unknown) =>
        this.#log.warn('heartbeat while jobs run failed', { err }),
      );
    }, HEARTBEAT_WHILE_WAITING_MS);
    try {
      for (const message of batch.messages) {
        const decoded = decodeBackfillCommand(message.value ?? '');
        if (!decoded.ok) {
          // The coordinator's bug, not data to keep: the producer reads the same command.
          this.#o.metrics.malformed.inc();
          this.#log.warn('malformed command skipped', {
            partition: message.partition,
            offset: message.offset,
            reason: decoded.reason,
          });
          continue;
        }
        const command = decoded.value;
        // The same command twice in one batch (the coordinator sent it again) is one job.
        if (jobs.has(command.id)) continue;
        const job = new BackfillJob(command, this.#o.jobs);
        this.#running.set(command.id, job);
        this.#o.metrics.started.inc();
        const run = job.run(abort.signal).finally(() => {
          if (this.#running.get(command.id) === job) this.#running.delete(command.id);
        });
        run.then(
          (outcome) => this.#o.metrics.ended.inc(1, { status: outcome.status }),
          () => undefined,
        );
        jobs.set(command.id, run);
      }
      try {
        await Promise.all(jobs.values());
      } catch (err) {
        // Stop the others and let them leave their groups before the batch fails.
        abort.abort(err);
        await Promise.allSettled(jobs.values());
        throw err;
      }
    } finally {
      this.#o.waitClock.clearInterval(beat);
      signal.removeEventListener('abort', stop);
    }
    if (signal.aborted) throw new AppError('CANCELLED', 'consumer stopped while jobs ran');
  }
}
