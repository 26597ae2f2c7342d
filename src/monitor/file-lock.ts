/**
 * A lock file taken with O_EXCL, for short exclusive work (history compaction) between processes.
 * It holds `{ pid, host, time, token }`; a lock whose process is gone (same host) or that is older
 * than `staleMs` is stale and may be broken.
 */
import { randomUUID } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

export interface LockOptions {
  /** Age after which a lock is stale whoever holds it (default 60 s; compaction takes far less). */
  staleMs?: number;
}

/** Releases a lock taken by {@link tryLock}; does nothing if the lock was broken by someone else meanwhile. */
export type ReleaseLock = () => void;

interface LockContent {
  pid: number;
  host: string;
  time: number;
  token: string;
}

function readLock(lockPath: string): string | undefined {
  try {
    return readFileSync(lockPath, 'utf8');
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isStale(lockPath: string, content: string | undefined, staleMs: number): boolean {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(lockPath).mtimeMs;
  } catch {
    return false; // Gone already: not ours to break, just retry.
  }
  if (Date.now() - mtimeMs > staleMs) return true;
  try {
    const held = JSON.parse(content ?? '') as Partial<LockContent>;
    return held.host === hostname() && typeof held.pid === 'number' && !isAlive(held.pid);
  } catch {
    return false; // Empty or half-written: its creator is still writing it.
  }
}

/**
 * Breaks a stale lock. It is moved aside first and compared with what was judged stale: if another
 * process replaced it in between, the fresh lock is put back (link fails if yet another exists).
 */
function breakLock(lockPath: string, judged: string | undefined): void {
  const aside = `${lockPath}.stale-${process.pid}-${randomUUID().slice(0, 8)}`;
  try {
    renameSync(lockPath, aside);
  } catch {
    return;
  }
  if (readLock(aside) !== judged) {
    try {
      linkSync(aside, lockPath);
    } catch {
      // Someone holds a newer lock already.
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // Already removed.
  }
}

function create(lockPath: string): string | undefined {
  const content: LockContent = { pid: process.pid, host: hostname(), time: Date.now(), token: randomUUID() };
  const text = JSON.stringify(content);
  let fd: number;
  try {
    fd = openSync(lockPath, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  return text;
}

/**
 * Takes the lock at `lockPath` if it is free or stale, without waiting.
 *
 * @returns a release function, or `undefined` when a live holder has it.
 * @throws the file system's error when the lock file cannot be created for another reason (no such
 *   folder, permissions).
 */
export function tryLock(lockPath: string, options: LockOptions = {}): ReleaseLock | undefined {
  const staleMs = options.staleMs ?? 60_000;
  for (let attempt = 0; attempt < 2; attempt++) {
    const mine = create(lockPath);
    if (mine !== undefined) {
      return () => {
        if (readLock(lockPath) !== mine) return;
        try {
          unlinkSync(lockPath);
        } catch {
          // Removed by a stale-lock breaker: nothing to release.
        }
      };
    }
    const held = readLock(lockPath);
    if (!isStale(lockPath, held, staleMs)) return undefined;
    breakLock(lockPath, held);
  }
  return undefined;
}
