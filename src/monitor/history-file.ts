/**
 * The file-level protocol of the history: lock-free O_APPEND appends, and the hand-over when a
 * compaction renames a new file over the one appenders may still be writing to.
 *
 * The compactor, after renaming the new file into place, appends a unique seal line to the old file
 * and copies every line that precedes the seal (but was not in its first read) to the new file. An
 * appender that finds, after writing, that the path names another file reads the old file: if its line
 * comes after the seal, nobody copied it and it appends it again to the new file; otherwise (before
 * the seal, or no seal yet, which means the seal will come after it) the compactor copies it. So each
 * line ends up in the new file exactly once, without appenders ever taking a lock.
 */
import { appendFileSync, closeSync, fchmodSync, fstatSync, mkdirSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';

/** Every seal line starts with this (after a line break); readers ignore such lines. */
export const SEAL_PREFIX = '{"seal":"';

/** Reads a file descriptor from `offset` to its current end. */
export function readFrom(fd: number, offset: number): Buffer {
  const size = fstatSync(fd).size;
  const buf = Buffer.alloc(Math.max(0, size - offset));
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, offset + done);
    if (n === 0) break;
    done += n;
  }
  return buf.subarray(0, done);
}

export function writeAll(fd: number, buf: Buffer): void {
  for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done);
}

/** True when `path` names the file open as `fd`. */
function pathIsFd(path: string, fd: number): boolean {
  const open = fstatSync(fd, { bigint: true });
  try {
    const named = statSync(path, { bigint: true });
    return named.ino === open.ino && named.dev === open.dev;
  } catch {
    return false;
  }
}

/** Offset of the first seal line in `buf`, or -1. */
function sealOffset(buf: Buffer): number {
  if (buf.subarray(0, SEAL_PREFIX.length).toString() === SEAL_PREFIX) return 0;
  const at = buf.indexOf(`\n${SEAL_PREFIX}`);
  return at < 0 ? -1 : at + 1;
}

/**
 * Appends `line` (one complete line) to `path` with a single O_APPEND write, creating the folder if
 * needed, and again to the new file if a compaction retired the old one without copying it.
 *
 * @returns the size of the file written to, just after the write.
 */
export function appendLine(path: string, line: Buffer): number {
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'a+', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
      mkdirSync(dirname(path), { recursive: true });
      continue;
    }
    try {
      // A file this call created is empty: make it exactly 0600 (open's mode is reduced by the umask).
      if (fstatSync(fd).size === 0) {
        try {
          fchmodSync(fd, 0o600);
        } catch {
          // someone else's empty file: append to it as it is
        }
      }
      writeAll(fd, line);
      const size = fstatSync(fd).size;
      if (pathIsFd(path, fd)) return size;
      const old = readFrom(fd, 0);
      const seal = sealOffset(old);
      const mine = old.indexOf(line);
      // Before the seal, or no seal yet: the compactor copies it. After the seal: write it again.
      if (mine >= 0 && (seal < 0 || mine < seal)) return size;
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Hands a retired history file over to its replacement: seals the old file (open as `oldFd`, with
 * O_APPEND) and appends to `path` the complete lines written to it after `from` and before the seal.
 *
 * @returns the number of bytes copied.
 */
export function sealAndCopyTail(oldFd: number, from: number, path: string): number {
  const seal = Buffer.from(`${SEAL_PREFIX}${randomUUID()}"}\n`);
  // A line break first, in case the old file ends with a torn line.
  writeAll(oldFd, Buffer.concat([Buffer.from('\n'), seal]));
  const tail = readFrom(oldFd, from);
  const sealAt = tail.indexOf(seal);
  const end = sealAt >= 2 ? tail.lastIndexOf(10, sealAt - 2) + 1 : 0;
  if (end > 0) appendFileSync(path, tail.subarray(0, end));
  return end;
}

/** Number of lines and the shortest line length in `buf`. */
export function measureLines(buf: Buffer, longest: number): { lines: number; shortest: number } {
  let lines = 0;
  let shortest = longest;
  for (let start = 0, nl = buf.indexOf(10); nl >= 0; start = nl + 1, nl = buf.indexOf(10, start)) {
    lines++;
    shortest = Math.min(shortest, nl + 1 - start);
  }
  return { lines, shortest: Math.max(shortest, 1) };
}
