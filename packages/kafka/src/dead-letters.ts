import type { OutgoingMessage } from './producer.js';
import { MAX_PRODUCE_REQUEST_BYTES, singleRecordBatchBytes } from './producer.js';
import { DLQ_HEADERS } from './topics.js';

function asBuffer(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

/**
 * A dead letter that fits in one request of `maxBytes`. The original bytes are the point of a
 * dead letter, so they are kept whole whenever they fit; a value that cannot (the message was
 * just under the broker's limit and the DLQ headers push it over) is cut to what fits, with
 * `dlq-truncated` saying why and `dlq-original-bytes` its real size. If even the headers copied
 * from the original do not leave room, they are dropped too; the DLQ's own headers always stay.
 */
export function fitDeadLetter(
  letter: OutgoingMessage,
  dlqHeaders: Readonly<Record<string, string>>,
  maxBytes: number = MAX_PRODUCE_REQUEST_BYTES,
): OutgoingMessage {
  const whole: OutgoingMessage = { ...letter, headers: { ...letter.headers, ...dlqHeaders } };
  if (singleRecordBatchBytes(whole) <= maxBytes) return whole;
  const value = asBuffer(letter.value);
  const note = (kept: number): Record<string, string> => ({
    [DLQ_HEADERS.truncated]: `value cut to ${kept} of ${value.length} bytes to fit the ${maxBytes}-byte message limit`,
    [DLQ_HEADERS.originalBytes]: String(value.length),
  });
  const fit = (headers: Record<string, string>): OutgoingMessage | undefined => {
    // The note's digits may grow with the kept length: measure with the widest it can be.
    const empty = {
      ...letter,
      value: Buffer.alloc(0),
      headers: { ...headers, ...note(value.length) },
    };
    const room = maxBytes - singleRecordBatchBytes(empty);
    if (room < 0) return undefined;
    const kept = Math.min(room, value.length);
    return { ...letter, value: value.subarray(0, kept), headers: { ...headers, ...note(kept) } };
  };
  return (
    fit({ ...letter.headers, ...dlqHeaders }) ??
    fit({ ...dlqHeaders }) ?? {
      key: null,
      value: Buffer.alloc(0),
      headers: { ...dlqHeaders, ...note(0) },
    }
  );
}
