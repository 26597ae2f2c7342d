/**
 * The one place that decides whether a file may be written, and writes it: the outputs of `export -o`,
 * `import --into` and `restore --into`. Each is checked before any work starts, built under a private
 * temporary name beside it, and renamed into place only when complete, keeping the mode, owner and
 * group of the file it replaces.
 *
 * What is refused, even with `force`:
 * - anything but a regular file: a directory, FIFO, socket or device (renaming over `/dev/null` as root
 *   would replace the device node with a regular file), checked with lstat;
 * - a symbolic link, whatever it points to. Writing through a link lets whoever can create one in the
 *   target directory (a shared or world-writable one) point a root restore at any file on the machine;
 *   replacing the link instead silently detaches the application from the file it really uses. Naming
 *   the file itself costs the user one word, and the error names it;
 * - the source of the operation (the database being exported, its -wal, -shm or -journal; the file
 *   being imported), matched by device and inode through any path or link, and by name;
 * - a database whose -wal or -journal is not empty (it is in use, or a hot journal would be rolled back
 *   into the replacement).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  fsyncDir,
  HOST_TAG,
  processRuns,
  registerTemp,
  releaseTemp,
  removeQuietly,
  SQLITE_SIDE_FILES,
  TEMP_NAME,
  tempPathBeside,
  tempStem,
} from './atomic-file.js';
import { NotFoundError, noSpaceError, ScriptoriumError, UsageError } from './errors.js';

export interface TargetOptions {
  /** The operation, for messages: `export`, `import`, `restore`. */
  op: string;
  /** Replace an existing regular file. */
  force: boolean;
  /** An existing empty file may be replaced without `force` (import's rule: an empty file is no database). */
  replaceEmpty?: boolean;
  /** The hint when the target exists and `force` was not given. */
  existsHint: string;
  /** Files the target must not be (the source of the operation); a database's side files count too. */
  sources?: { path: string; what: string; database?: boolean }[];
  /** Folders the target must not be inside (a local repository, for restore); missing ones are ignored. */
  notInside?: { path: string; what: string }[];
  /** The target is a database: refuse it while its -wal or -journal is not empty. */
  database?: boolean;
  /**
   * A missing parent directory (export's default `./backups/`) is not an error: the plan says so
   * (`parentMissing`), and {@link prepareParent} creates it once the work is about to write.
   */
  createParent?: boolean;
}

/** A target that passed the checks: where to write, and the file it replaces, if any. */
export interface TargetPlan {
  /** The path as the user gave it (for messages and results). */
  readonly given: string;
  /** The path written: the real parent directory and the name, so that links in the folder path do not matter. */
  readonly path: string;
  /** The regular file being replaced, or undefined for a new file. */
  readonly existing: fs.Stats | undefined;
  readonly options: TargetOptions;
  /** The parent directory does not exist yet (only with `createParent`). */
  readonly parentMissing?: boolean;
  /**
   * The directory checked (the real path of the parent, resolved once) and its device and inode: the
   * temporary file and the final rename go into exactly this directory, and {@link commitTarget}
   * refuses to move anything when the path no longer leads to it (a parent swapped for a link mid-run).
   */
  readonly dir?: { readonly path: string; readonly dev: number; readonly ino: number };
}

/** What a file is, in words, for messages. */
function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'a regular file';
}

function lstatOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined;
  }
}

/** The real directory a target goes into; a missing one is a clear error (undefined with `createParent`). */
function realParent(given: string, options: TargetOptions): string | undefined {
  const dir = path.dirname(given);
  try {
    const real = fs.realpathSync(dir);
    if (!fs.statSync(real).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    return real;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && options.createParent) return undefined;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EEXIST') { // EEXIST: mkdir found a file there
      const what = code === 'ENOENT' ? `the directory ${dir} does not exist` : `${dir} is not a directory (it, or a part of its path, is a file)`;
      throw new NotFoundError(`${options.op}: ${what} (for ${given})`, {
        hint: 'Create the directory first, or name a file in an existing one. Nothing was written.',
        cause: err,
      });
    }
    throw targetError(err, `${options.op}: the directory ${dir} (for ${given})`);
  }
}

/** `file` with its directory resolved (the name itself may be a link, or missing). */
function inRealDir(file: string): string | undefined {
  const abs = path.resolve(file);
  try {
    return path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
  } catch {
    return undefined;
  }
}

/** Refuses `target` when it is one of the operation's sources (same device and inode, or same name). */
function checkNotSource(given: string, target: string, options: TargetOptions): void {
  const stat = statOrUndefined(target); // follows links: a link to the source is the source
  for (const source of options.sources ?? []) {
    let real: string | undefined;
    try {
      real = fs.realpathSync(source.path);
    } catch {
      // a source that cannot be resolved is compared by name only
    }
    const names = [inRealDir(source.path), real].filter((n): n is string => n !== undefined);
    const sides = source.database ? ['', ...SQLITE_SIDE_FILES] : [''];
    for (const side of sides) {
      const what = side === '' ? source.what : `the ${side.slice(1)} file of ${source.what}`;
      const sameName = names.some((n) => n + side === target);
      const other = stat && statOrUndefined(`${real ?? source.path}${side}`);
      if (sameName || (other && other.dev === stat!.dev && other.ino === stat!.ino)) {
        throw new UsageError(`${options.op}: ${given} is ${what} (${source.path}${side}); it cannot also be the output`, {
          hint: 'Write to another file. --force never replaces the file being read.',
        });
      }
    }
  }
}

/**
 * Checks `given` as the output of an operation, before any work starts; throws E_TARGET_EXISTS,
 * E_TARGET_BUSY, E_USAGE (the source itself) or E_NOT_FOUND (no such directory).
 */
export function checkTarget(given: string, options: TargetOptions): TargetPlan {
  try {
    return check(given, options);
  } catch (err) {
    throw err instanceof ScriptoriumError ? err : targetError(err, `${options.op}: ${given}`);
  }
}

/**
 * `plan.dir` as it was checked: the path still resolves to itself (no part of it became a link) and
 * names the same directory (device and inode). Throws E_TARGET_CHANGED otherwise.
 */
function checkSameDir(plan: TargetPlan): void {
  const changed = dirChanged(plan);
  if (changed) throw changed;
}

/** The E_TARGET_CHANGED error when `plan.dir` is no longer what was checked (see {@link checkSameDir}), else undefined. */
function dirChanged(plan: TargetPlan, cause?: unknown): ScriptoriumError | undefined {
  const dir = plan.dir;
  if (!dir) return undefined;
  let same = false;
  try {
    const stat = fs.statSync(dir.path);
    same = fs.realpathSync(dir.path) === dir.path && stat.isDirectory() && stat.dev === dir.dev && stat.ino === dir.ino;
  } catch {
    // gone: not the same
  }
  if (same) return undefined;
  return new ScriptoriumError('E_TARGET_CHANGED', `${plan.options.op}: the directory of ${plan.given} (${dir.path}) was moved or replaced (by a link?) while the ${plan.options.op} ran; nothing was written there`, {
    hint: 'Check who else writes to that directory, then run it again.',
    ...(cause !== undefined ? { cause } : {}),
  });
}

/**
 * The error to report for a failure while writing `plan`'s target: E_TARGET_CHANGED when its directory
 * was moved or replaced meanwhile (SQLite notices first, with SQLITE_IOERR_FSTAT, when its open file
 * is no longer at its path), else what {@link targetError} makes of it.
 */
export function planError(plan: TargetPlan, err: unknown, where: string): unknown {
  if (err instanceof ScriptoriumError && err.code === 'E_TARGET_CHANGED') return err;
  return dirChanged(plan, err) ?? targetError(err, where);
}

function check(given: string, options: TargetOptions, fixedDir?: NonNullable<TargetPlan['dir']>): TargetPlan {
  const name = path.basename(given);
  // The parent is resolved once, here (links in the folder path followed once); the plan keeps it.
  const dir = fixedDir?.path ?? realParent(given, options);
  if (dir === undefined) return { given, path: path.resolve(given), existing: undefined, options, parentMissing: true }; // nothing there to clash with
  let dirId = fixedDir;
  if (!dirId) {
    const stat = fs.statSync(dir);
    dirId = { path: dir, dev: stat.dev, ino: stat.ino };
  }
  const target = path.join(dir, name);
  checkNotSource(given, target, options);
  for (const folder of options.notInside ?? []) {
    let real: string;
    try {
      real = fs.realpathSync(folder.path);
    } catch {
      continue; // not a local folder (a URL), or gone
    }
    if (target === real || target.startsWith(real.endsWith(path.sep) ? real : `${real}${path.sep}`)) {
      throw new UsageError(`${options.op}: ${given} is inside ${folder.what} (${folder.path})`, {
        hint: 'Write outside it: a file there would be taken for part of it, or replace part of it.',
      });
    }
  }
  const stat = name === '' || name === '.' || name === '..' ? fs.statSync(target) : lstatOrUndefined(target);
  if (stat?.isSymbolicLink()) {
    let to = '';
    try {
      to = fs.readlinkSync(target);
    } catch {
      // unreadable link: named without its target
    }
    const pointed = statOrUndefined(target);
    const what = pointed ? `a symbolic link to ${kindOf(pointed)}` : 'a dangling symbolic link';
    throw new ScriptoriumError('E_TARGET_EXISTS', `${options.op}: ${given} is ${what}${to ? ` (${to})` : ''}; scriptorium does not write through links or replace them`, {
      hint: pointed?.isFile() ? `Name the file itself: ${fs.realpathSync(target)}` : 'Name a regular file, or a new one.',
    });
  }
  if (stat && !stat.isFile()) {
    throw new ScriptoriumError('E_TARGET_EXISTS', `${options.op}: ${given} is ${kindOf(stat)}, not a regular file`, {
      hint: `Name a regular file (or a new one); --force replaces only regular files.${options.op === 'export' ? ' For standard output, use -o -.' : ''}`,
    });
  }
  if (stat && !options.force && !(options.replaceEmpty && stat.size === 0)) {
    throw new ScriptoriumError('E_TARGET_EXISTS', `${options.op}: ${given} already exists${options.replaceEmpty ? ' and is not empty' : ''}`, {
      hint: options.existsHint,
    });
  }
  if (options.database) {
    for (const side of ['-wal', '-journal']) {
      const f = `${target}${side}`;
      const s = lstatOrUndefined(f);
      if (s && (!s.isFile() || s.size > 0)) {
        throw new ScriptoriumError('E_TARGET_BUSY', `${options.op}: ${given} has a ${side.slice(1)} file (${f}): it is in use or was not closed cleanly`, {
          hint: 'Stop the applications using the database (or open and close it once with sqlite3 to recover it), then retry.',
        });
      }
    }
  }
  return { given, path: target, existing: stat, options, dir: dirId };
}

/** Creates the missing parent of a `createParent` plan and checks the target again; other plans are returned as they are. */
export function prepareParent(plan: TargetPlan): TargetPlan {
  if (!plan.parentMissing) return plan;
  const dir = path.dirname(plan.given);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new NotFoundError(`${plan.options.op}: ${dir} is not a directory (it, or a part of its path, is a file) (for ${plan.given})`, {
        hint: 'Create the directory first, or name a file in an existing one. Nothing was written.',
        cause: err,
      });
    }
    throw targetError(err, `${plan.options.op}: create the directory ${dir} (for ${plan.given})`);
  }
  return checkTarget(plan.given, { ...plan.options, createParent: false });
}

/**
 * Removes the temporaries that killed processes of this host left beside the target (any operation's:
 * their names carry pid and host, see TEMP_NAME), calling `notice` once for each. Temporaries of live
 * processes, of other hosts, and files that are not regular files are left alone.
 */
export function sweepStaleTemps(plan: TargetPlan, notice: (message: string, file: string) => void): string[] {
  const dir = path.dirname(plan.path);
  const base = tempStem(path.basename(plan.path));
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  const prefix = `.${base}.`;
  for (const entry of names) {
    if (!entry.startsWith(prefix)) continue; // (a folder of exports may hold thousands of files)
    const m = TEMP_NAME.exec(entry);
    if (!m || m[1] !== base || m[4] !== HOST_TAG) continue;
    const pid = Number(m[3]);
    if (pid === process.pid || processRuns(pid)) continue;
    const file = path.join(dir, entry);
    if (!lstatOrUndefined(file)?.isFile()) continue;
    try {
      fs.unlinkSync(file);
    } catch {
      continue;
    }
    removed.push(file);
    if (!m[5]) notice(`${plan.options.op}: removed a temporary file left by process ${pid}: ${file}`, file);
  }
  return removed;
}

/** A new temporary path beside the target, registered for removal on SIGINT/SIGTERM. */
export function tempFor(plan: TargetPlan, tag: string): string {
  checkSameDir(plan); // (the temporary goes into the directory that was checked, or nowhere)
  return registerTemp(tempPathBeside(plan.path, tag));
}

/** Removes a temporary and its SQLite side files (failure paths). */
export function discardTemp(temp: string): void {
  removeQuietly(temp, ...SQLITE_SIDE_FILES.map((s) => `${temp}${s}`));
}

/** chown that gives up quietly when we may not (not root): the group alone, then nothing. */
function keepOwner(fd: number, stat: fs.Stats): void {
  try {
    fs.fchownSync(fd, stat.uid, stat.gid);
  } catch {
    try {
      fs.fchownSync(fd, -1, stat.gid);
    } catch {
      // not ours to give away: the file keeps our owner
    }
  }
}

/**
 * Moves the finished `temp` into place: gives it the mode, owner and group of the file it replaces (or
 * 0600 for a new file), makes it durable unless `synced`, checks the target again (it may have changed
 * while we worked), and renames it over the target. Without `force` the target is never clobbered, even
 * if one appeared meanwhile (a hard link refuses an existing name).
 */
export function commitTarget(plan: TargetPlan, temp: string, options: { synced?: boolean } = {}): void {
  // The target is checked again (it may have changed while we worked), in the directory checked first:
  // the path is not resolved again, so a parent swapped for a link since then cannot redirect the rename.
  checkSameDir(plan);
  if (plan.dir && path.dirname(temp) !== plan.dir.path) throw new Error(`commitTarget: ${temp} is not in ${plan.dir.path}`); // a caller's bug
  const now = recheck(plan);
  const existing = now.existing;
  const fd = fs.openSync(temp, 'r+');
  try {
    if (existing) {
      keepOwner(fd, existing);
      fs.fchmodSync(fd, existing.mode & 0o7777); // after chown, which clears set-id bits
    } else {
      fs.fchmodSync(fd, 0o600);
    }
    if (!options.synced) fs.fsyncSync(fd);
  } catch (err) {
    throw noSpaceError(err, `${plan.options.op}: finish ${temp}`) ?? err;
  } finally {
    fs.closeSync(fd);
  }
  checkSameDir(plan); // again after the fsync, just before the link or rename: the window left is one call
  if (!existing) {
    let linked = false;
    try {
      fs.linkSync(temp, now.path); // fails if a file appeared at the name since the check
      linked = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new ScriptoriumError('E_TARGET_EXISTS', `${plan.options.op}: ${plan.given} appeared while the ${plan.options.op} ran; it was left as it is`, {
          hint: plan.options.existsHint,
        });
      }
      // a filesystem without hard links: the check above has to do, and rename below
    }
    if (linked) {
      removeQuietly(temp); // (renaming one link of a file over the other would do nothing)
      fsyncDir(path.dirname(now.path));
      return;
    }
  }
  fs.renameSync(temp, now.path);
  releaseTemp(temp);
  fsyncDir(path.dirname(now.path));
}

/** {@link checkTarget} again for a plan, in the directory it checked (not resolved again). */
function recheck(plan: TargetPlan): TargetPlan {
  const options = { ...plan.options, createParent: false };
  try {
    return plan.dir ? check(plan.given, options, plan.dir) : check(plan.given, options);
  } catch (err) {
    throw err instanceof ScriptoriumError ? err : targetError(err, `${options.op}: ${plan.given}`);
  }
}

/** True when `err`, or an error it wraps, is a full disk (ENOSPC, EDQUOT, SQLITE_FULL). */
export function isDiskFull(err: unknown): boolean {
  return diskFull(err) !== undefined;
}

/** The error in `err`'s cause chain that says the disk is full, if any. */
function diskFull(err: unknown): unknown {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === 'E_NO_SPACE') return e;
  }
  return undefined;
}

/**
 * The error to report for a failure while writing a target: E_NO_SPACE naming `where` when the disk is
 * full (also when another error wraps the cause, such as a load's E_CORRUPT around SQLITE_FULL), else
 * `err` unchanged.
 */
export function targetError(err: unknown, where: string): unknown {
  const full = diskFull(err);
  if (!full) {
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM') {
      return new ScriptoriumError('E_IO', `${where}: ${(err as Error).message}`, {
        hint: code === 'EROFS' ? 'The file system is read-only: write somewhere else.' : 'Check that the directory is writable by this user (and the file, for --force).',
        cause: err,
      });
    }
    return err;
  }
  if ((full as { code?: unknown }).code === 'E_NO_SPACE' && full === err) return err;
  const code = (full as { code?: string }).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return noSpaceError(full, where)!;
  return new ScriptoriumError('E_NO_SPACE', `${where}: the disk is full (${code})`, {
    hint: 'Free some space and try again; the temporary file was removed and nothing that existed before was changed.',
    cause: err,
  });
}
