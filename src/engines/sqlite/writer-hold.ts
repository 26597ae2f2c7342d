import type Database from 'better-sqlite3';

/** Writers held off a database (see {@link holdWriters}); `release` lets them go. */
export interface WriterHold {
  release(): void;
}

/**
 * Holds off every writer of `file` (BEGIN IMMEDIATE on a connection of its own, waiting up to half a
 * second for a writer that is already at work), so that a second connection opened before the hold is
 * released reads at the same snapshot as the first. Take it before the first connection's first read.
 *
 * Returns undefined when no such hold can be had in WAL mode (a read-only file or directory, a long
 * write): a second connection could then see a later commit. In rollback-journal mode the first
 * connection's shared lock already keeps every commit out, so the hold is a no-op there when the lock
 * cannot be had; the second connection only has to get its own shared lock before a writer queues.
 */
export function holdWriters(file: string, open: (file: string) => Database.Database): WriterHold | undefined {
  let lock: Database.Database | undefined;
  let wal = true;
  try {
    lock = open(file);
    wal = lock.pragma('journal_mode', { simple: true }) === 'wal';
    lock.pragma('busy_timeout = 500');
    lock.exec('BEGIN IMMEDIATE');
  } catch {
    lock?.close();
    return wal ? undefined : { release() {} };
  }
  const held = lock;
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      try {
        held.exec('ROLLBACK');
      } finally {
        held.close();
      }
    },
  };
}
