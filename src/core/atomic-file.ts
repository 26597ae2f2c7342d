import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';

/**
 * Files that appear whole or not at all: write under a temporary name beside the destination, make it
 * durable, then rename it into place. A crash leaves at most a temporary file, never a half-written
 * destination; the temporary's name says which process on which host wrote it, so that the next run
 * onto the same destination can remove what a killed process left (see src/core/target-file.ts).
 */

/** A short, stable tag for this host (its name hashed), so that temporaries name the host without its name. */
export const HOST_TAG = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8);

/**
 * Whether process `pid` runs on this host: true unless it is known to be gone (ESRCH); one we may not
 * signal (EPERM, another user's) runs. Temporaries and locks of a process that no longer runs are stale.
 */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * How a temporary beside `<name>` is named: `.<name>.<tag>-<pid>-h<host>-<random>`, plus SQLite's
 * `-journal`, `-wal` or `-shm` for its side files. Groups: 1 name, 2 tag, 3 pid, 4 host, 5 side suffix.
 */
export const TEMP_NAME = /^\.(.+)\.([a-z]+)-(\d+)-h([0-9a-f]{8})-[0-9a-f]{8}(-journal|-wal|-shm)?$/;

/** SQLite's side files of a database file (removed with a temporary database). */
export const SQLITE_SIDE_FILES = ['-journal', '-wal', '-shm'] as const;

/**
 * The part of a temporary's name that stands for the destination's name: the name itself, or for a
 * long one (which, with the ~40 characters added, would pass the 255-byte limit of a name) its start
 * and a hash of the whole.
 */
export function tempStem(name: string): string {
  if (Buffer.byteLength(name) <= 180) return name;
  let start = name.slice(0, 120);
  while (Buffer.byteLength(start) > 120) start = start.slice(0, -1);
  return `${start}~${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

/** A fresh temporary path in the same directory as `dest` (same filesystem, so rename is atomic). */
export function tempPathBeside(dest: string, tag = 'tmp'): string {
  const dir = path.dirname(path.resolve(dest));
  return path.join(dir, `.${tempStem(path.basename(dest))}.${tag}-${process.pid}-h${HOST_TAG}-${randomBytes(4).toString('hex')}`);
}

/**
 * Temporary files this process is writing right now. The CLI's SIGINT/SIGTERM handlers remove them
 * (with their SQLite side files) before exiting; code that creates a temporary registers it and
 * releases it once it is renamed into place or removed.
 */
const liveTemps = new Set<string>();

/** Registers `file` as a temporary this process is writing; returns it. */
export function registerTemp(file: string): string {
  liveTemps.add(file);
  return file;
}

/** Forgets `file` (renamed into place or removed). */
export function releaseTemp(file: string): void {
  liveTemps.delete(file);
}

/** The temporaries registered now. */
export function registeredTemps(): string[] {
  return [...liveTemps];
}

/** Removes every registered temporary and its SQLite side files, synchronously (from a signal handler). */
export function removeRegisteredTemps(): string[] {
  const removed = [...liveTemps];
  for (const file of removed) removeQuietly(file, ...SQLITE_SIDE_FILES.map((s) => `${file}${s}`));
  liveTemps.clear();
  return removed;
}

/**
 * Runs `fn` with the umask 077, so that files it creates (a new SQLite database, whose mode SQLite
 * chooses) are private from their first byte: a chmod afterwards would leave a window in which another
 * user can open the file and keep reading it. Synchronous only: the umask is process-wide.
 */
export function withPrivateUmask<T>(fn: () => T): T {
  // Worker threads may not set the umask; there the file is made 0600 when it is committed.
  if (!isMainThread) return fn();
  const old = process.umask(0o077);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}

/** Opens a new file `file` for writing, private (0600 whatever the umask); fails if it exists. */
export function openPrivate(file: string): number {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | (fs.constants.O_NOFOLLOW ?? 0), 0o600);
  try {
    fs.fchmodSync(fd, 0o600); // the mode given to open is reduced by the umask, never widened: make it exact
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return fd;
}

/** fsync a file by path. */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory so that a rename or create inside it survives a crash (no-op where unsupported). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic there.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Make `temp` durable and rename it over `dest`, then make the rename durable. `synced`: the writer has
 * already fsynced `temp` (DurableFileWriter, ZstdFileWriter), so it is not synced again.
 */
export function commitFile(temp: string, dest: string, options: { synced?: boolean } = {}): void {
  if (!options.synced) fsyncFile(temp);
  fs.renameSync(temp, dest);
  releaseTemp(temp);
  fsyncDir(path.dirname(path.resolve(dest)));
}

/** Remove files if they exist; never throws (used on failure paths). */
export function removeQuietly(...files: string[]): void {
  for (const file of files) {
    releaseTemp(file);
    try {
      fs.rmSync(file, { force: true });
    } catch {
      // best effort: the caller is already reporting the original failure
    }
  }
}
