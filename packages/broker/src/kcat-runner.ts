/**
 * kcat (librdkafka's CLI) for tests of this broker and of our clients against it: the other Kafka
 * client implementation, so a protocol detail kafkajs forgives still gets caught. Exported as
 * `@candlestream/broker/kcat` for other packages' tests.
 */
import { spawn, spawnSync } from 'node:child_process';
import { KCAT_BIN } from './config.js';

/** Whether the librdkafka CLI is on this machine (tests skip locally without it, fail under CI). */
export const kcatFound = spawnSync(KCAT_BIN, ['-V']).status === 0;

/** Runs kcat to completion with `input` on stdin; rejects after `timeoutMs`. */
export function runKcat(
  args: string[],
  input?: string,
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(KCAT_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kcat ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

/** Reads `topic` from the beginning to its end with kcat, one `format` line per record. */
export async function kcatConsumeAll(
  brokers: string,
  topic: string,
  format: string,
): Promise<{ code: number | null; lines: string[]; stderr: string }> {
  const result = await runKcat([
    '-b',
    brokers,
    '-C',
    '-t',
    topic,
    '-o',
    'beginning',
    '-e',
    '-q',
    '-f',
    `${format}\\n`,
  ]);
  return { code: result.code, lines: result.stdout.trim().split('\n'), stderr: result.stderr };
}
