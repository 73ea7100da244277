/**
 * Replays (docs/REPLAY.md): a session publishes stored history as trades on its own topic,
 * `replay.<session>`, never into the live series.
 */

/** Session names go into topic names: Kafka allows [A-Za-z0-9._-]; dots are kept for ours. */
export const REPLAY_SESSION_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The topic a session publishes to unless told another. */
export function replayTopicName(session: string): string {
  return `replay.${session}`;
}
