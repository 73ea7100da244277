/** The replay's one live status line and its closing summary (docs/REPLAY.md). */
import type { ReplaySummary } from '../replay/engine.js';
import type { ReplaySpeed, ReplayStatus } from '../replay/types.js';

const BAR_WIDTH = 20;

export function formatSpeed(speed: ReplaySpeed): string {
  return speed === 'max' ? 'max' : `${String(Number(speed.toPrecision(4)))}x`;
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');

/** `▶ playing 2026-11-20 03:14:15Z [████░░░] 13.1%  48,211 msgs  1,204/s  60x  lag p99 1.2 ms` */
export function statusLine(status: ReplayStatus): string {
  const icon = status.state === 'playing' ? '▶' : status.state === 'paused' ? '⏸' : '■';
  const filled = Math.round((status.percent / 100) * BAR_WIDTH);
  const bar = '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
  const at = new Date(status.simTime)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
  return [
    `${icon} ${status.state.padEnd(7)}`,
    at,
    `[${bar}] ${status.percent.toFixed(1).padStart(5)}%`,
    `${count(status.messages)} msgs`,
    `${count(status.rate)}/s`,
    formatSpeed(status.speed),
    `lag p99 ${status.lag.p99.toFixed(1)} ms`,
  ].join('  ');
}

/** The lines after the replay: what went out, how long it took, how well it kept time. */
export function summaryLines(summary: ReplaySummary, topic: string): string[] {
  const speed = Number.isFinite(summary.effectiveSpeed)
    ? `${summary.effectiveSpeed.toPrecision(4)}x`
    : 'instant';
  return [
    `${summary.completed ? 'replay done' : 'replay stopped'}: ${count(summary.messages)} messages to ${topic}`,
    `  wall time ${(summary.wallMs / 1_000).toFixed(2)} s, effective speed ${speed}`,
    `  lag behind schedule: p50 ${summary.lag.p50.toFixed(1)} ms, p99 ${summary.lag.p99.toFixed(1)} ms, worst ${summary.lag.max.toFixed(1)} ms`,
  ];
}
