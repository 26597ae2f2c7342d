/**
 * Repository locks. The rule that keeps prune from deleting what a backup needs: every operation that
 * adds to or reads from the repository's packs (backup, restore, verify, diff, forget) holds a
 * *shared* lock for its whole run; prune holds an *exclusive* one. A lock is an object `locks/<random>`
 * naming its kind, host, pid and time, refreshed every minute. A process writes its lock first, then
 * lists the others; if it finds a conflicting one that is not stale it removes its own and waits (or
 * fails with E_LOCKED). Because each side writes before it looks, two conflicting processes can never
 * both proceed. A lock is stale when it has not been refreshed for 5 minutes, or when it belongs to a
 * process on this host that no longer exists (so a backup killed with -9 does not block prune).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { processRuns } from '../core/atomic-file.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { ScriptoriumError } from '../core/errors.js';
import type { Store } from '../stores/store.js';
import { LockedError } from './errors.js';
import { listObjects, MAX_BYTES } from './objects.js';

export type LockKind = 'shared' | 'exclusive';

/** The content of a lock object. */
export interface LockInfo {
  kind: LockKind;
  operation: string;
  host: string;
  pid: number;
  /** ISO time of the last refresh. */
  time: string;
}

export const LOCK_REFRESH_MS = 60_000;
export const LOCK_STALE_MS = 5 * 60_000;

/** What an operation holds while it runs: call `release` when done (also on failure). */
export interface HeldLock {
  release(): Promise<void>;
}

/** A held lock; call `release` when done (also on failure). */
export class RepositoryLock implements HeldLock {
  readonly key: string;
  readonly #store: Store;
  readonly #timer: NodeJS.Timeout;
  readonly #info: LockInfo;

  constructor(store: Store, key: string, info: LockInfo) {
    this.#store = store;
    this.key = key;
    this.#info = info;
    this.#timer = setInterval(() => void this.#refresh(), LOCK_REFRESH_MS);
    this.#timer.unref();
  }

  async #refresh(): Promise<void> {
    this.#info.time = new Date().toISOString();
    await this.#store.put(this.key, encode(this.#info)).catch(() => undefined);
  }

  async release(): Promise<void> {
    clearInterval(this.#timer);
    await this.#store.delete(this.key);
  }
}

/** Whether `lock` can be ignored: not refreshed for LOCK_STALE_MS, or its process on this host is gone. */
export function isStale(lock: LockInfo, now = Date.now()): boolean {
  const age = now - Date.parse(lock.time);
  if (!(age < LOCK_STALE_MS)) return true;
  if (lock.host !== hostname()) return false;
  if (lock.pid === process.pid) return false;
  return !processRuns(lock.pid);
}

/**
 * Reads every lock in the store (locks that vanish or do not parse are skipped), but `except` (the
 * caller's own, which it knows: one request fewer per lock taken on a remote store).
 */
export async function listLocks(store: Store, except?: string): Promise<Array<LockInfo & { key: string }>> {
  const locks: Array<LockInfo & { key: string }> = [];
  for await (const { key } of listObjects(store, 'locks/')) {
    if (key === except) continue;
    try {
      locks.push({ ...(JSON.parse((await store.get(key, { maxBytes: MAX_BYTES.lock })).toString('utf8')) as LockInfo), key });
    } catch {
      // deleted meanwhile, or a torn write of a dying process: not a live lock
    }
  }
  return locks;
}

/**
 * Takes a lock of `kind` for `operation`, waiting up to `waitMs` for conflicting locks to go away.
 * Throws `LockedError` (E_LOCKED) naming the holder when it cannot.
 */
export async function acquireLock(store: Store, kind: LockKind, operation: string, waitMs = 0): Promise<RepositoryLock> {
  const deadline = Date.now() + waitMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 2000)) {
    const info: LockInfo = { kind, operation, host: hostname(), pid: process.pid, time: new Date().toISOString() };
    const key = `locks/${randomBytes(16).toString('hex')}`;
    try {
      await store.put(key, encode(info));
    } catch (err) {
      throw readOnly(err, store, operation) ?? err;
    }
    const conflict = (await listLocks(store, key)).find(
      (other) => other.key !== key && (kind === 'exclusive' || other.kind === 'exclusive') && !isStale(other),
    );
    if (!conflict) return new RepositoryLock(store, key, info);
    await store.delete(key);
    if (Date.now() >= deadline) {
      throw new LockedError(
        `repository is locked: ${operation} needs a${kind === 'shared' ? ' shared' : 'n exclusive'} lock, but ` +
          `${conflict.operation} (pid ${conflict.pid} on ${conflict.host}, since ${conflict.time}) holds a${conflict.kind === 'shared' ? ' shared' : 'n exclusive'} one`,
      );
    }
    await sleep(Math.min(delay * (0.5 + Math.random()), Math.max(1, deadline - Date.now())));
  }
}

/** Deletes stale locks (prune calls this while holding its exclusive lock); returns how many. */
export async function removeStaleLocks(store: Store): Promise<number> {
  let removed = 0;
  for (const lock of await listLocks(store)) {
    if (isStale(lock)) {
      await store.delete(lock.key);
      removed++;
    }
  }
  return removed;
}

/** The error for a lock that cannot be written because the repository is read-only to this process. */
function readOnly(err: unknown, store: Store, operation: string): ScriptoriumError | undefined {
  let cause: unknown = err;
  while (cause instanceof Error && !(cause as NodeJS.ErrnoException).syscall && cause.cause !== undefined) cause = cause.cause;
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  if (code !== 'EROFS' && code !== 'EACCES' && code !== 'EPERM') return undefined;
  return new ScriptoriumError('E_IO', `${operation}: cannot lock the repository ${store.location}: it cannot be written here (${code})`, {
    hint: 'To read a repository you cannot write, pass --no-lock (restore, verify, diff; `snapshots` needs no lock). Backup, forget and prune need write access.',
    cause: err,
  });
}

function encode(info: LockInfo): Buffer {
  return Buffer.from(JSON.stringify(info));
}
