/**
 * The dynamic consumer as its own process (main.ts, as `pnpm start` runs it), SIGKILLed in the
 * middle of a job: the command was not committed, so the restarted process gets it again, and
 * the job's group resumes after its last commit. The job ends with exactly the candles sent.
 */
import { fileURLToPath } from 'node:url';
import { MINUTE_MS } from '@candlestream/core';
import { TOPICS } from '@candlestream/kafka';
import type { ServiceProcess } from '@candlestream/testkit';
import { needServices, spawnService, waitUntil } from '@candlestream/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import type { Fixture } from './testing.js';
import {
  BTC,
  candleRecords,
  candles,
  committedRecords,
  createJob,
  endRecord,
  reportsOf,
  sendCommand,
  startInfra,
  storedMinutes,
  T0,
  writeRecords,
} from './testing.js';

const services = needServices(['postgres']);
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const MINUTES = 600;
/** A restart waits out the killed member's session (10 s) in each of its two groups. */
const WAIT_MS = 90_000;
const TEST_TIMEOUT_MS = 180_000;

let f: Fixture | undefined;
const processes: ServiceProcess[] = [];

afterEach(async () => {
  await Promise.all(processes.map((p) => p.kill('SIGKILL')));
  processes.length = 0;
  await f?.close();
  f = undefined;
});

function spawnConsumer(fx: Fixture): ServiceProcess {
  const p = spawnService(MAIN, {
    KAFKA_BROKERS: fx.brokers,
    DATABASE_URL: fx.db.url,
    HEALTH_PORT: '0',
    DYNAMIC_CONSUMER_GROUP: fx.groupId,
    LOG_LEVEL: 'info',
  });
  processes.push(p);
  return p;
}

describe.skipIf(services.skip)('dynamic consumer process, killed mid-job', () => {
  it(
    'a SIGKILLed dynamic consumer gets the command again after a restart and completes the job with exactly the candles sent',
    async () => {
      // The process uses the platform's topic names; the broker is this test's own.
      const fx = (f = await startInfra(services.get('postgres').url, {
        topics: {
          commands: TOPICS.backfillCommands,
          status: TOPICS.backfillStatus,
          barUpdates: TOPICS.barUpdates,
          dlq: TOPICS.ticksDlq,
        },
      }));
      const bars = candles(T0, MINUTES);
      const command = await createJob(fx, [{ from: T0, to: T0 + MINUTES * MINUTE_MS }]);
      const half = MINUTES / 2;
      await writeRecords(fx, command, candleRecords(BTC, bars.slice(0, half)));
      await sendCommand(fx, command);

      const first = spawnConsumer(fx);
      await first.waitForLine((l) => l['msg'] === 'job storing', WAIT_MS);
      // Killed once a batch is committed in the job's group, with more of the job to come.
      await waitUntil(
        'a job batch committed',
        async () =>
          (await committedRecords(fx.kafka, `${fx.groupId}.${command.id}`, command.topic)) > 0,
        WAIT_MS,
      );
      expect(await first.kill('SIGKILL')).toBe('SIGKILL');
      const storedBefore = (await storedMinutes(fx)).length;
      expect(storedBefore).toBeGreaterThan(0);
      expect(await committedRecords(fx.kafka, fx.groupId, TOPICS.backfillCommands.name)).toBe(0);

      // The producer goes on meanwhile: the rest of the candles, then the end.
      await writeRecords(fx, command, candleRecords(BTC, bars.slice(half)));
      await writeRecords(fx, command, [endRecord(command, MINUTES)]);

      const second = spawnConsumer(fx);
      await second.waitForLine((l) => l['msg'] === 'job storing', WAIT_MS);
      await waitUntil(
        'the done report',
        () => reportsOf(fx, command.id).some((r) => r.status === 'done'),
        WAIT_MS,
      );
      expect(await storedMinutes(fx)).toEqual(
        bars.map((b) => ({ ...b, origin: 'candles', source: 'backfill' })),
      );
      expect(reportsOf(fx, command.id).at(-1)).toMatchObject({
        status: 'done',
        progress: { done: MINUTES, total: MINUTES },
      });
      await waitUntil(
        'the command committed',
        async () =>
          (await committedRecords(fx.kafka, fx.groupId, TOPICS.backfillCommands.name)) === 1,
        WAIT_MS,
      );
      // The restarted job resumed after the first process's commits, not from the beginning.
      const resumed = second.lines.find((l) => l['msg'] === 'job storing');
      expect(resumed?.['resumedAt']).toBeGreaterThan(0);
      expect(await second.kill('SIGTERM')).toBe(0);
    },
    TEST_TIMEOUT_MS,
  );
});
