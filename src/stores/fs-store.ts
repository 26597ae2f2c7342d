/** A Store in a local directory: one file per key, written to a temporary name, synced, then renamed. */
import { randomBytes } from 'node:crypto';
import { constants as bufferLimits } from 'node:buffer';
import { closeSync, constants, fchmodSync, fstatSync, lstatSync, openSync, type Dirent, type Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { HOST_TAG, processRuns } from '../core/atomic-file.js';
import { noSpaceError, NotFoundError, ScriptoriumError } from '../core/errors.js';
import {
  checkKey, checkPrefix, piecesOptions, type GetOptions, type GetPiecesOptions, type ListOptions, type RemovedTemporary, type Store, type StoreCapabilities, type StoreEntry,
} from './store.js';

/** Prefix of the temporary files of unfinished puts; `list` skips them. */
export const TEMP_PREFIX = '.tmp-';

/** Mode of every file the store writes, and of every folder it creates: private, as restic's (whatever the umask). */
export const FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/**
 * A temporary file's name says who wrote it: `.tmp-<host>-<pid>-<random>` (put) or that plus `-` and any
 * of `[0-9a-z]` (files under a {@link FsStore.tempPrefix}, e.g. the native packer's `<prefix><n>`), where
 * `<host>` is the first 8 hex digits of the SHA-256 of the writer's host name. The next run on the same
 * host can then tell a dead writer's file from a live one's. Older names (`.tmp-<random>[-<n>]`) carry no
 * pid: only the age-based sweep removes them.
 */
const TEMP_NAME = /^\.tmp-([0-9a-f]{8})-([1-9][0-9]{0,9})-[0-9a-f]{16}(?:-[0-9a-z]*)?$/;

/** Largest read of one call to `read` (the file system API takes at most 2 GiB − 1 per call). */
const READ_PIECE = 1 << 30;

/**
 * A {@link Store} kept in a directory of the local file system. `put` is atomic and durable: the data
 * goes to `.tmp-<host>-<pid>-<random>` beside the final name, is fsynced, renamed over the final name,
 * and the directory is fsynced. A crash leaves at most a `.tmp-` file, which `list` never reports and
 * which the next run on this host removes once its writer is gone ({@link removeDeadTemporaries}).
 *
 * The repository is a closed world: the store never follows a symbolic link below its root (the root
 * itself may be one: the user gave it), opens only regular files (never blocking on a FIFO, never
 * opening a device), and never resolves a key outside the root. Files are created 0600, folders 0700.
 *
 * @example
 * ```ts
 * const store = new FsStore('/var/backups/app');
 * await store.put('config', Buffer.from('{}'));
 * ```
 */
export class FsStore implements Store {
  readonly location: string;
  readonly capabilities: StoreCapabilities = { atomicPut: true, durablePut: true, maxConcurrency: 4 };
  readonly #root: string;
  readonly #host = HOST_TAG;

  constructor(root: string) {
    if (typeof root !== 'string' || root === '') throw new TypeError('FsStore needs a directory path');
    this.#root = resolve(root);
    this.location = this.#root;
  }

  #path(key: string): string {
    checkKey(key);
    return join(this.#root, ...key.split('/'));
  }

  /** A temporary name of this process: `.tmp-<host>-<pid>-<random>`. */
  #tempName(): string {
    return `${TEMP_PREFIX}${this.#host}-${process.pid}-${randomBytes(8).toString('hex')}`;
  }

  /**
   * Checks that every folder between the root and `key` is a real folder, not a symbolic link (or
   * anything else): a key must never resolve outside the root. Missing folders are fine (a put creates
   * them; a read then finds nothing).
   *
   * Synchronous: on a local disk a folder's lstat is answered from the kernel's cache in a microsecond
   * or two, where a round trip through the thread pool costs the main thread ~20-40 µs (a backup makes
   * several hundred). On a network file system each may wait for the server (its attribute cache
   * usually answers); the operation that follows waits for it anyway.
   */
  async #checkFolders(op: string, key: string): Promise<void> {
    const segments = key.split('/');
    let path = this.#root;
    for (let i = 0; i < segments.length - 1; i++) {
      path = join(path, segments[i]!);
      let st: Stats | undefined;
      try {
        st = lstatSync(path, { throwIfNoEntry: false });
      } catch (err) {
        throw ioError(op, this.location, key, err);
      }
      if (st === undefined) return;
      // A regular file there leads nowhere (the operation fails on it with ENOTDIR, as E_IO); a link
      // or a special file could lead outside the root, and is never passed through.
      if (st.isFile()) return;
      if (!st.isDirectory()) throw notAnObject(op, this.location, segments.slice(0, i + 1).join('/'), st, 'folder');
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.#write(key, data, false);
  }

  /**
   * See {@link Store.putIfAbsent}: the synced temporary file is hard-linked to the final name, which
   * fails with EEXIST when something is there (atomic on local file systems), instead of renamed over it.
   */
  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    return this.#write(key, data, true);
  }

  async #write(key: string, data: Uint8Array, exclusive: boolean): Promise<boolean> {
    const path = this.#path(key);
    const dir = dirname(path);
    return this.#io('put', key, async () => {
      await this.#checkFolders('put', key);
      const temp = join(dir, this.#tempName());
      let created: string | undefined;
      try {
        const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
        const [handle, made] = await this.#inDirectory(key, dir, () => open(temp, flags, FILE_MODE));
        created = made;
        try {
          await handle.chmod(FILE_MODE); // exactly 0600, whatever the umask took away
          await handle.writeFile(data);
          await handle.sync();
        } finally {
          await handle.close();
        }
        if (exclusive) {
          try {
            await link(temp, path);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
            throw err;
          } finally {
            await unlink(temp).catch(() => undefined);
          }
        } else {
          await rename(temp, path);
        }
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw err;
      }
      await syncPlaced(dir, created);
      return true;
    });
  }

  tempPrefix(): string {
    return join(this.#root, `${this.#tempName()}-`);
  }

  async putFile(key: string, path: string): Promise<void> {
    const final = this.#path(key);
    const dir = dirname(final);
    // Never move (or remove) a file that is not one of this store's temporary files.
    if (dirname(path) !== this.#root || !basename(path).startsWith(TEMP_PREFIX)) {
      throw new TypeError(`FsStore.putFile: ${path} is not a temporary file of ${this.#root}`);
    }
    await this.#io('put', key, async () => {
      let created: string | undefined;
      try {
        await this.#checkFolders('put', key);
        // The writer (native code) created it with its own mode: make it private before it is an object.
        // (Synchronous, as #checkFolders: metadata only, where the thread pool's round trips cost more.)
        // (O_NONBLOCK: a FIFO put in its place must not hang the thread; it is then refused as not a file.)
        const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
        try {
          if (!fstatSync(fd).isFile()) throw new TypeError(`FsStore.putFile: ${path} is not a regular file`);
          fchmodSync(fd, FILE_MODE);
        } finally {
          closeSync(fd);
        }
        [, created] = await this.#inDirectory(key, dir, () => rename(path, final));
      } catch (err) {
        await unlink(path).catch(() => undefined);
        throw err;
      }
      await syncPlaced(dir, created);
    });
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    const path = this.#path(key);
    const { maxBytes } = options;
    if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) throw new TypeError(`FsStore.get: invalid maxBytes ${maxBytes}`);
    return this.#io('get', key, async () => {
      await this.#checkFolders('get', key);
      // lstat first: a device is never opened (opening one can have effects), a link never followed.
      const before = await lstat(path);
      if (!before.isFile()) throw notAnObject('get', this.location, key, before);
      if (maxBytes !== undefined && before.size > maxBytes) throw tooLarge(this.location, key, before.size, maxBytes);
      // O_NOFOLLOW and O_NONBLOCK: if the file was swapped for a link or a FIFO since, open fails or
      // returns at once, and the fstat below refuses it.
      const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const st = await handle.stat();
        if (!st.isFile()) throw notAnObject('get', this.location, key, st);
        if (maxBytes !== undefined && st.size > maxBytes) throw tooLarge(this.location, key, st.size, maxBytes);
        if (st.size > bufferLimits.MAX_LENGTH) throw tooLarge(this.location, key, st.size, bufferLimits.MAX_LENGTH);
        // Read exactly the size fstat gave (never more, whatever the file does meanwhile).
        const data = Buffer.allocUnsafe(st.size);
        let filled = 0;
        while (filled < data.length) {
          const { bytesRead } = await handle.read(data, filled, Math.min(READ_PIECE, data.length - filled), filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return filled === data.length ? data : data.subarray(0, filled);
      } finally {
        await handle.close();
      }
    });
  }

  /** {@link Store.getPieces}: the file read through one buffer of `pieceBytes`, reused for every piece. */
  async *getPieces(key: string, options: GetPiecesOptions = {}): AsyncGenerator<Buffer> {
    const path = this.#path(key);
    const { maxBytes, pieceBytes } = piecesOptions('FsStore.getPieces', options);
    // The same checks as get, in the same order: no link followed, no FIFO or device opened.
    const { handle, size } = await this.#io('get', key, async () => {
      await this.#checkFolders('get', key);
      const before = await lstat(path);
      if (!before.isFile()) throw notAnObject('get', this.location, key, before);
      if (maxBytes !== undefined && before.size > maxBytes) throw tooLarge(this.location, key, before.size, maxBytes);
      const opened = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const st = await opened.stat();
        if (!st.isFile()) throw notAnObject('get', this.location, key, st);
        if (maxBytes !== undefined && st.size > maxBytes) throw tooLarge(this.location, key, st.size, maxBytes);
        return { handle: opened, size: st.size };
      } catch (err) {
        await opened.close();
        throw err;
      }
    });
    try {
      const piece = Buffer.allocUnsafe(Math.max(1, Math.min(pieceBytes, size)));
      // Read exactly the size fstat gave: a file that shrinks meanwhile is an error, one that grows is read no further.
      for (let at = 0; at < size;) {
        const want = Math.min(piece.length, size - at);
        const { bytesRead } = await this.#io('get', key, () => handle.read(piece, 0, want, at));
        if (bytesRead === 0) {
          throw new ScriptoriumError('E_CORRUPT', `fs: get ${key}: ended after ${at} of its ${size} bytes while it was read (${this.location}${sep})`);
        }
        at += bytesRead;
        yield piece.subarray(0, bytesRead);
      }
    } finally {
      await handle.close();
    }
  }

  async has(key: string): Promise<boolean> {
    const path = this.#path(key);
    await this.#checkFolders('has', key);
    try {
      // Synchronous, as #checkFolders; and a missing file (a backup's usual answer) makes no error object.
      return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
    } catch (err) {
      throw ioError('has', this.location, key, err);
    }
  }

  async stat(key: string): Promise<StoreEntry> {
    const path = this.#path(key);
    const st = await this.#io('stat', key, async () => {
      await this.#checkFolders('stat', key);
      return lstat(path);
    });
    if (!st.isFile()) throw notAnObject('stat', this.location, key, st);
    return { key, size: st.size };
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<StoreEntry> {
    checkPrefix(prefix);
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    if (base !== '') {
      // The folders on the way to the prefix must be real folders too.
      const segments = base.split('/');
      for (let i = 1; i <= segments.length; i++) {
        const at = segments.slice(0, i).join('/');
        const st = await lstat(join(this.#root, ...segments.slice(0, i))).catch((err: unknown) => {
          if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
          throw ioError('list', this.location, prefix, err);
        });
        if (!st) return;
        if (!st.isDirectory()) {
          options.strays?.push(at);
          return;
        }
      }
    }
    yield* this.#walk(base, prefix, options.strays);
  }

  async *#walk(dirKey: string, prefix: string, strays: string[] | undefined): AsyncGenerator<StoreEntry> {
    const dir = dirKey === '' ? this.#root : join(this.#root, ...dirKey.split('/'));
    let names: Dirent[];
    try {
      names = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw ioError('list', this.location, prefix, err);
    }
    for (const entry of names) {
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      const under = key.startsWith(prefix);
      if (entry.name.startsWith(TEMP_PREFIX) && !entry.isDirectory()) continue; // a put in progress (or a crashed one's)
      // readdir's types come from the directory itself (lstat's view): a link is never a folder here.
      if (entry.isDirectory() && validName(entry.name)) {
        if (under || prefix.startsWith(key + '/')) yield* this.#walk(key, prefix, strays);
      } else if (entry.isFile() && validName(entry.name)) {
        if (!under) continue;
        try {
          const st = await lstat(join(dir, entry.name));
          if (st.isFile()) yield { key, size: st.size };
          else strays?.push(key);
        } catch (err) {
          if (errno(err) !== 'ENOENT') throw ioError('list', this.location, prefix, err);
        }
      } else if (under || prefix.startsWith(key + '/')) {
        strays?.push(key); // a link, a FIFO, a device, a socket, or a name no key can have
      }
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key);
    try {
      await this.#checkFolders('delete', key);
      const st = await lstat(path);
      if (!st.isFile()) throw notAnObject('delete', this.location, key, st);
      await unlink(path);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw ioError('delete', this.location, key, err);
    }
  }

  async close(): Promise<void> {}

  async removeStaleTemporaries(olderThanMs: number): Promise<number> {
    let removed = 0;
    await this.#temporaries(async (path, st) => {
      if (Date.now() - st.mtimeMs > olderThanMs) {
        await unlink(path).catch(() => undefined);
        removed++;
      }
    });
    return removed;
  }

  async removeDeadTemporaries(): Promise<RemovedTemporary[]> {
    const removed: RemovedTemporary[] = [];
    const dead = new Map<number, boolean>();
    await this.#temporaries(async (path, _st, name) => {
      const match = TEMP_NAME.exec(basename(path));
      if (!match || match[1] !== this.#host) return;
      const pid = Number(match[2]);
      if (pid === process.pid) return;
      let gone = dead.get(pid);
      if (gone === undefined) dead.set(pid, (gone = !processRuns(pid)));
      if (!gone) return;
      try {
        await unlink(path);
        removed.push({ name, pid });
      } catch (err) {
        if (errno(err) !== 'ENOENT') throw ioError('delete', this.location, name, err);
      }
    });
    return removed;
  }

  /**
   * Calls `fn` for each temporary file (a regular file named `.tmp-…`) in the repository's own folders:
   * the root, `snapshots/`, `index/`, `locks/`, `packs/` and `packs/<2 hex>/`, never through a link and
   * never in any other folder (a user's files elsewhere are not ours to remove).
   */
  async #temporaries(fn: (path: string, st: Stats, name: string) => Promise<void>): Promise<void> {
    const visit = async (dirKey: string, depth: number): Promise<void> => {
      const dir = dirKey === '' ? this.#root : join(this.#root, ...dirKey.split('/'));
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const name = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
        if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX)) {
          const st = await lstat(join(dir, entry.name)).catch(() => undefined);
          if (st?.isFile()) await fn(join(dir, entry.name), st, name);
        } else if (entry.isDirectory()) {
          if (depth === 0 && ['snapshots', 'index', 'locks', 'packs'].includes(entry.name)) await visit(name, 1);
          else if (depth === 1 && dirKey === 'packs' && /^[0-9a-f]{2}$/.test(entry.name)) await visit(name, 2);
        }
      }
    };
    await visit('', 0);
  }

  /**
   * Runs `op`, which creates a file in `dir` (the folder of `key`); when it fails with ENOENT, creates
   * the missing folders (0700) and runs it once more (most puts go to a folder that exists: try first,
   * create it only when missing). Returns op's result and the first folder mkdir made, if any.
   */
  async #inDirectory<T>(key: string, dir: string, op: () => Promise<T>): Promise<[T, string | undefined]> {
    try {
      return [await op(), undefined];
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw err;
      const created = await mkdir(dir, { recursive: true, mode: DIR_MODE });
      if (created !== undefined) {
        for (let d = dir; d.length >= created.length && d !== dirname(d); d = dirname(d)) await chmod(d, DIR_MODE);
      }
      // A folder made meanwhile by someone else must still be a real one.
      await this.#checkFolders('put', key);
      return [await op(), created];
    }
  }

  async #io<T>(op: string, key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (errno(err) === 'ENOENT' && op !== 'put') {
        throw new NotFoundError(`fs: ${op} ${key}: not found in ${this.location}`, { cause: err });
      }
      throw ioError(op, this.location, key, err);
    }
  }
}

/** Whether a name can be a segment of a key (see {@link checkKey}). */
function validName(name: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name) && name.length <= 255;
}

/**
 * Syncs `dir` after a file was renamed into it and, when the put had to create it (`created`: the
 * first directory mkdir made), each new directory in its parent, up to the first old one.
 */
async function syncPlaced(dir: string, created: string | undefined): Promise<void> {
  await syncDir(dir);
  if (created !== undefined) {
    for (let d = dir; d.length >= created.length && d !== dirname(d); d = dirname(d)) await syncDir(dirname(d));
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } catch (err) {
    // Some file systems refuse fsync on a directory; the rename is then as durable as they allow.
    if (errno(err) !== 'EINVAL' && errno(err) !== 'EISDIR') throw err;
  } finally {
    await handle.close();
  }
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** `key` (or a folder on its way, `expected: 'folder'`) is something the store never follows or opens. */
function notAnObject(op: string, location: string, key: string, st: Stats, expected = 'regular file'): ScriptoriumError {
  return new ScriptoriumError('E_CORRUPT', `fs: ${op} ${key}: is ${kindOf(st)}, not a ${expected} of the repository (${location}${sep})`, {
    hint: 'Something other than scriptorium put it there; scriptorium never follows or opens it. Remove it (after looking at what it is), or replace it with the object from a copy of the repository.',
  });
}

function tooLarge(location: string, key: string, size: number, maxBytes: number): ScriptoriumError {
  return new ScriptoriumError('E_CORRUPT', `fs: get ${key}: is ${size} bytes, more than the ${maxBytes} such an object can hold (${location}${sep})`, {
    hint: 'The object is damaged or was replaced; it was not read. Remove it, or replace it from a copy of the repository.',
  });
}

function ioError(op: string, location: string, key: string, err: unknown): ScriptoriumError {
  if (err instanceof ScriptoriumError || err instanceof TypeError) return err as ScriptoriumError;
  const noSpace = noSpaceError(err, `repository ${location}: ${op} ${key}`);
  if (noSpace) return noSpace;
  const reason = errno(err) ?? (err instanceof Error ? err.message : String(err));
  const readOnly = reason === 'EROFS' || reason === 'EACCES' || reason === 'EPERM';
  return new ScriptoriumError('E_IO', `fs: ${op} ${key}: ${reason} (${location}${sep})`, {
    cause: err,
    hint: readOnly && op !== 'get' && op !== 'list' && op !== 'stat' && op !== 'has'
      ? 'The repository cannot be written here (read-only or not yours). To read it (snapshots, restore, verify, diff), pass --no-lock.'
      : 'check that the repository directory exists, is writable and has free space',
  });
}
