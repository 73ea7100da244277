import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ServiceProcess {
  readonly child: ChildProcess;
  /** Every stdout line parsed as a JSON log line (others kept as `{ msg: line }`). */
  readonly lines: Record<string, unknown>[];
  /** Everything written to stderr. */
  stderr(): string;
  /** Resolves with the first log line `match` accepts; fails after `timeoutMs` or if the process exits. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

/**
 * Runs a service's `main.ts` as its own process, the way `pnpm start` does (node with the tsx
 * loader), with `env` on top of this process's environment and `args` after the entry (for a
 * command-line tool). Tests kill it for real (SIGKILL).
 */
export function spawnService(
  entry: string,
  env: Record<string, string>,
  args: readonly string[] = [],
): ServiceProcess {
  return spawnNode(['--import', 'tsx', entry, ...args], env, { label: entry });
}

/**
 * Runs node with `nodeArgs` (a compiled entry: `['--conditions=compiled', 'dist/main.js']`) in
 * `cwd`, with the same log handling as `spawnService`; `label` names it in errors.
 */
export function spawnNode(
  nodeArgs: readonly string[],
  env: Record<string, string>,
  options: { cwd?: string; label?: string } = {},
): ServiceProcess {
  const entry = options.label ?? nodeArgs.join(' ');
  const child = spawn(process.execPath, nodeArgs, {
    cwd: options.cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { msg: text };
    }
    lines.push(line);
    for (const wake of waiters) wake();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
      for (const wake of waiters) wake();
    });
  });
  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    waitForLine: (match, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        let seen = 0;
        const check = (): void => {
          for (; seen < lines.length; seen++) {
            if (match(lines[seen]!)) {
              done();
              resolve(lines[seen]!);
              return;
            }
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(
              new Error(
                `${entry} exited (${child.exitCode ?? child.signalCode}) before the line; stderr: ${stderr.slice(-2_000)}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a log line from ${entry}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
