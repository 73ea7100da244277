import type { ReplaySessionStatus } from '@candlestream/core';
import { encodeReplayMessage, errorMessage, REPLAY_HEARTBEAT_MS } from '@candlestream/core';
import { deleteTopics } from '@candlestream/kafka';
import { fromCallback } from 'xstate';
import type { OutboxEvent, OutgoingStatus, SimulatorEvent } from '../simulator.machine.js';
import type { Deps } from './deps.js';

/** A session's status goes out on a change of state at once, otherwise about this often. */
const REPORT_EVERY_MS = REPLAY_HEARTBEAT_MS * 0.9;
/** After a failed send, the next try waits this long. */
const RETRY_MS = 1_000;

/**
 * The machine's way out: session statuses onto replay-status and topic deletions. Statuses wait
 * in one slot per session (the newest wins), so a broker away for a while costs a bounded
 * backlog; sends are one at a time, so a session's statuses stay in order. Each session's status
 * goes out when its state changes, and otherwise once per heartbeat: its liveness signal.
 */
export function outboxActor(deps: Deps) {
  return fromCallback<OutboxEvent>(({ receive, sendBack }) => {
    const log = deps.logger.child({ component: 'outbox' });
    const pending = new Map<string, OutgoingStatus>();
    const sent = new Map<string, { state: string; at: number }>();
    const deletions: string[] = [];
    let busy = false;
    let stopped = false;
    let retry: ReturnType<typeof deps.clock.setTimeout> | undefined;

    const flush = async (): Promise<void> => {
      while (!stopped && (pending.size > 0 || deletions.length > 0)) {
        if (pending.size > 0) {
          const at = deps.clock.now();
          const batch: ReplaySessionStatus[] = [...pending.values()].map((s) => ({ ...s, at }));
          pending.clear();
          try {
            await deps.publisher.send(
              deps.topics.status.name,
              batch.map((s) => ({ key: s.session, value: encodeReplayMessage(s) })),
            );
          } catch (err) {
            // Put back what is not newer already, and try again in a moment.
            for (const s of batch) if (!pending.has(s.session)) pending.set(s.session, s);
            throw err;
          }
          for (const s of batch) sent.set(s.session, { state: s.state, at });
          deps.counters.statuses.inc(batch.length);
        }
        if (deletions.length > 0) {
          const topics = deletions.splice(0);
          // Their producers first: a producer that knew a deleted topic fails every send after.
          for (const topic of topics) await deps.publishers.close(topic);
          const deleted = await deleteTopics(deps.kafka, topics);
          deps.counters.topicsDeleted.inc(deleted.length);
          log.info('replay topics deleted', { topics: deleted });
        }
      }
    };
    const kick = (): void => {
      if (busy || stopped || retry) return;
      busy = true;
      flush()
        .then(
          () => sendBack({ type: 'RECOVERED', check: 'outbox' } satisfies SimulatorEvent),
          (err: unknown) => {
            sendBack({
              type: 'DEGRADED',
              check: 'outbox',
              problem: errorMessage(err),
            } satisfies SimulatorEvent);
            retry = deps.clock.setTimeout(() => {
              retry = undefined;
              kick();
            }, RETRY_MS);
          },
        )
        .finally(() => (busy = false));
    };

    receive((event) => {
      if (event.type === 'DELETE_TOPICS') {
        deletions.push(...event.topics);
        for (const topic of event.topics) log.info('replay session removed', { topic });
      } else {
        const { status } = event;
        const last = sent.get(status.session);
        const due =
          !last ||
          last.state !== status.state ||
          deps.clock.now() - last.at >= REPORT_EVERY_MS ||
          pending.has(status.session);
        if (!due) return;
        pending.set(status.session, status);
      }
      kick();
    });
    return () => {
      stopped = true;
      if (retry) deps.clock.clearTimeout(retry);
    };
  });
}
