import { closeSync, fsyncSync, openSync, writevSync } from 'node:fs';

/** File helpers shared by the partition logs and the offset store. */

/** writev may write less than asked (a signal, a full disk on the way): write the rest too. */
export function writeFully(fd: number, buffers: Buffer[]): void {
  let pending = buffers;
  while (pending.length > 0) {
    let written = writevSync(fd, pending);
    const rest: Buffer[] = [];
    for (const buffer of pending) {
      if (written >= buffer.length) written -= buffer.length;
      else {
        rest.push(written > 0 ? buffer.subarray(written) : buffer);
        written = 0;
      }
    }
    pending = rest;
  }
}

/** fsync of a directory persists its entries (new, renamed or deleted files): POSIX fsync(2). */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
