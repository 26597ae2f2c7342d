/**
 * Repository locks. The rule that keeps prune from deleting what a backup needs: every operation that
 * adds to or reads from the repository's packs (backup, restore, verify, diff, forget) holds a
 * *shared* lock for its whole run; prune holds an *exclusive* one. A lock is an object `locks/<random>`
 * naming its kind, host, pid and time, refreshed every minute.
 *
 * Taking a lock costs a shared holder no listing (on S3 a LIST is the dearest request, and backups are
 * the frequent operation): besides its own `locks/<random>`, an exclusive holder writes the well-known
 * object `locks/exclusive` (created only when absent: `If-None-Match: *` on S3, a hard link on a local
 * disk) naming its own lock, and then lists `locks/` for other locks. A shared holder writes its own
 * lock first, then reads `locks/exclusive` (one GET). With read-after-write consistency (S3's, a local
 * file system's) one of two racing parties always sees the other: if the shared holder's GET comes
 * before the exclusive holder created `locks/exclusive`, its own lock was written before that, so the
 * exclusive holder's listing that follows sees it. Two exclusive holders exclude each other both on
 * `locks/exclusive` and by their listings. A party that finds a conflicting lock that is not stale
 * removes what it wrote and waits (or fails with E_LOCKED). A lock is stale when it has not been
 * refreshed for 5 minutes, or when it belongs to a process on this host that no longer exists (so a
 * backup killed with -9 does not block prune); a stale `locks/exclusive` is removed by the next
 * exclusive holder, or by `unlock`.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { processRuns } from '../core/atomic-file.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundError, ScriptoriumError } from '../core/errors.js';
import type { Store } from '../stores/store.js';
import { LockedError } from './errors.js';
import { listObjects, MAX_BYTES } from './objects.js';

export type LockKind = 'shared' | 'exclusive';

/** The well-known object an exclusive holder creates, and a shared one reads (see the file comment). */
export const EXCLUSIVE_LOCK_KEY = 'locks/exclusive';

/** The content of a lock object. */
export interface LockInfo {
  kind: LockKind;
  operation: string;
  host: string;
  pid: number;
  /** ISO time of the last refresh. */
  time: string;
  /** In `locks/exclusive`: a random id of its holder, so that a holder removes only its own. */
  holder?: string;
}

export const LOCK_REFRESH_MS = 60_000;
export const LOCK_STALE_MS = 5 * 60_000;

/** What an operation holds while it runs: call `release` when done (also on failure). */
export interface HeldLock {
  release(): Promise<void>;
}

/** A held lock; call `release` when done (also on failure). */
export class RepositoryLock implements HeldLock {
  /** Its object: `locks/<random>`, or `locks/exclusive` for an exclusive lock on a store with putIfAbsent. */
  readonly key: string;
  readonly #store: Store;
  readonly #timer: NodeJS.Timeout;
  readonly #info: LockInfo;
  /** Whether this lock also created `locks/exclusive` beside its own object (a store without putIfAbsent). */
  readonly #marker: boolean;

  constructor(store: Store, key: string, info: LockInfo, marker = false) {
    this.#store = store;
    this.key = key;
    this.#info = info;
    this.#marker = marker;
    this.#timer = setInterval(() => void this.#refresh(), LOCK_REFRESH_MS);
    this.#timer.unref();
  }

  async #refresh(): Promise<void> {
    this.#info.time = new Date().toISOString();
    await this.#store.put(this.key, encode(this.#info)).catch(() => undefined);
    if (this.#marker) await this.#store.put(EXCLUSIVE_LOCK_KEY, encode(this.#info)).catch(() => undefined);
  }

  async release(): Promise<void> {
    clearInterval(this.#timer);
    if (this.key === EXCLUSIVE_LOCK_KEY || this.#marker) await removeMarker(this.#store, this.#info.holder!);
    if (this.key !== EXCLUSIVE_LOCK_KEY) await this.#store.delete(this.key);
  }
}

/** Removes `locks/exclusive` if `holder` wrote it (after a stale lock was broken, it may be another's). */
async function removeMarker(store: Store, holder: string): Promise<void> {
  const marker = await readLock(store, EXCLUSIVE_LOCK_KEY);
  if (marker === undefined || marker.holder === holder) await store.delete(EXCLUSIVE_LOCK_KEY);
}

/** Reads one lock object: undefined when it is missing or does not parse (a torn write of a dying process). */
async function readLock(store: Store, key: string): Promise<LockInfo | undefined> {
  const read = await readLockState(store, key);
  return typeof read === 'object' ? read : undefined;
}

/**
 * Reads one lock object, telling a missing one (`'missing'`) from one that is there but is no live
 * lock's (`'torn'`: it does not parse, or a sealed lock that does not open).
 */
async function readLockState(store: Store, key: string): Promise<LockInfo | 'missing' | 'torn'> {
  try {
    const info = JSON.parse((await store.get(key, { maxBytes: MAX_BYTES.lock })).toString('utf8')) as LockInfo;
    return info !== null && typeof info === 'object' ? info : 'torn';
  } catch (err) {
    // Missing, torn, or damaged: not a live lock. Other failures (the network) are not an absence,
    // and stop the caller.
    if (err instanceof NotFoundError) return 'missing';
    if (err instanceof SyntaxError) return 'torn';
    if (err instanceof ScriptoriumError && (err.code === 'E_CORRUPT' || err.code === 'E_TRUNCATED' || err.code === 'E_DIGEST_MISMATCH')) return 'torn';
    throw err;
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
 * Creates `locks/exclusive` with `info` (whose `holder` is the caller's random id); returns undefined
 * when it did, else the live exclusive lock that holds it. A stale one is removed and the creation
 * tried again.
 */
async function claimMarker(store: Store, info: LockInfo): Promise<(LockInfo & { key: string }) | undefined> {
  const content = encode(info);
  for (let attempt = 0; attempt < 3; attempt++) {
    if (store.putIfAbsent) {
      if (await store.putIfAbsent(EXCLUSIVE_LOCK_KEY, content)) return undefined;
    } else if (!(await store.has(EXCLUSIVE_LOCK_KEY))) {
      // A backend without an atomic create: exclusive holders also exclude each other by their listings.
      await store.put(EXCLUSIVE_LOCK_KEY, content);
      return undefined;
    }
    const other = await readLockState(store, EXCLUSIVE_LOCK_KEY);
    // Released between our create and this read: try to create it again. Never delete here: the
    // marker there now may be a third party's, created after the release (deleting it let two
    // exclusive holders in at once; test/s3/s3-locks.test.ts found it).
    if (other === 'missing') continue;
    // Ours: a conditional put that succeeded, whose answer was lost, was retried and answered 412.
    if (other !== 'torn' && other.holder === info.holder) return undefined;
    if (other !== 'torn' && !isStale(other)) return { ...other, key: EXCLUSIVE_LOCK_KEY };
    await store.delete(EXCLUSIVE_LOCK_KEY); // stale (or torn): its holder is gone
  }
  const other = await readLock(store, EXCLUSIVE_LOCK_KEY);
  return { ...(other ?? info), key: EXCLUSIVE_LOCK_KEY };
}

/**
 * Takes a lock of `kind` for `operation`, waiting up to `waitMs` for conflicting locks to go away.
 * Throws `LockedError` (E_LOCKED) naming the holder when it cannot. A shared lock costs a put and a
 * get (of `locks/exclusive`), and a delete at release; an exclusive one a put of `locks/exclusive`
 * and a listing of `locks/` (and a get and a delete at release).
 */
export async function acquireLock(store: Store, kind: LockKind, operation: string, waitMs = 0): Promise<RepositoryLock> {
  const deadline = Date.now() + waitMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 2000)) {
    const id = randomBytes(16).toString('hex');
    const info: LockInfo = { kind, operation, host: hostname(), pid: process.pid, time: new Date().toISOString() };
    let conflict: (LockInfo & { key: string }) | undefined;
    let lock: RepositoryLock | undefined;
    // With an atomic create, an exclusive lock is `locks/exclusive` alone (one object: prune on a full
    // disk needs room for one page); without, its own `locks/<random>` too, for exclusive holders to
    // see each other in their listings.
    const own = kind === 'exclusive' && store.putIfAbsent ? EXCLUSIVE_LOCK_KEY : `locks/${id}`;
    if (own !== EXCLUSIVE_LOCK_KEY) {
      try {
        await store.put(own, encode(info));
      } catch (err) {
        throw readOnly(err, store, operation) ?? err;
      }
    }
    if (kind === 'shared') {
      const exclusive = await readLock(store, EXCLUSIVE_LOCK_KEY);
      if (exclusive !== undefined && !isStale(exclusive)) conflict = { ...exclusive, key: EXCLUSIVE_LOCK_KEY };
      else lock = new RepositoryLock(store, own, info);
    } else {
      const marked = { ...info, holder: id };
      try {
        conflict = await claimMarker(store, marked);
      } catch (err) {
        if (own !== EXCLUSIVE_LOCK_KEY) await store.delete(own).catch(() => undefined);
        throw readOnly(err, store, operation) ?? err;
      }
      if (!conflict) {
        conflict = (await listLocks(store, own)).find((other) => other.key !== EXCLUSIVE_LOCK_KEY && !isStale(other));
        if (conflict) await removeMarker(store, id);
        else lock = new RepositoryLock(store, own, marked, own !== EXCLUSIVE_LOCK_KEY);
      }
    }
    if (lock || !conflict) return lock!;
    if (own !== EXCLUSIVE_LOCK_KEY) await store.delete(own);
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
