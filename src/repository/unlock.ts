/**
 * `unlock`: removes stale locks (as restic's `unlock`): a lock whose process no longer runs on this
 * host, or that was not refreshed for longer than a limit (holders refresh every minute). A lock dated
 * in the future is left where it is and reported with its host and time: its holder's clock (or this
 * one) is wrong, and age tells nothing about it.
 */
import { hostname } from 'node:os';
import { UsageError } from '../core/errors.js';
import { isStale, listLocks, LOCK_STALE_MS, type LockInfo } from './locks.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from './repository.js';

/** How far in the future a lock's time may be before it counts as dated in the future (clock skew). */
export const LOCK_FUTURE_SKEW_MS = 60_000;

export interface UnlockOptions extends OpenOptions {
  /** Remove locks not refreshed for this long (default: 5 minutes, when every lock counts as stale). */
  olderThanMs?: number;
  /** The time ages count back from (default: now). */
  now?: Date;
}

/** One lock, as unlock saw it. */
export interface LockReport extends LockInfo {
  key: string;
  /** Why it was removed, left, or is held. */
  reason: string;
}

export interface UnlockResult {
  /** Stale locks removed. */
  removed: LockReport[];
  /** Locks dated in the future, left alone. */
  future: LockReport[];
  /** Locks of running operations, left alone. */
  held: LockReport[];
}

/**
 * Removes stale locks and reports the others.
 *
 * @example
 * ```ts
 * const { removed, future } = await unlock('/mnt/nas/backups', { olderThanMs: 3600_000 });
 * ```
 */
export async function unlock(repository: RepositoryLocation | Repository, options: UnlockOptions = {}): Promise<UnlockResult> {
  const olderThanMs = options.olderThanMs ?? LOCK_STALE_MS;
  if (!(Number.isFinite(olderThanMs) && olderThanMs >= 0)) throw new UsageError(`unlock: invalid age limit ${olderThanMs}`, { hint: 'Give --older-than as a number of minutes.' });
  return withRepository(repository, options, async (repo) => {
    const now = (options.now ?? new Date()).getTime();
    const result: UnlockResult = { removed: [], future: [], held: [] };
    for (const lock of await listLocks(repo.store)) {
      const time = Date.parse(lock.time);
      const here = lock.host === hostname();
      if (time > now + LOCK_FUTURE_SKEW_MS) {
        result.future.push({ ...lock, reason: `dated in the future (${lock.time}, by ${lock.host}): check that host's clock` });
        continue;
      }
      let reason: string | undefined;
      if (!Number.isFinite(time)) reason = 'it has no valid time';
      else if (here && lock.pid !== process.pid && isStale({ ...lock, time: new Date(now).toISOString() }, now)) reason = `its process (pid ${lock.pid}) no longer runs on this host`;
      else if (now - time > olderThanMs) reason = `not refreshed for ${Math.round((now - time) / 60_000)} minutes`;
      if (reason === undefined) {
        result.held.push({ ...lock, reason: `held by ${lock.operation} (pid ${lock.pid} on ${lock.host}, refreshed ${lock.time})` });
        continue;
      }
      await repo.store.delete(lock.key);
      result.removed.push({ ...lock, reason });
    }
    return result;
  });
}
