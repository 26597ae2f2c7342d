/** A Store in a local directory: one file per key, written to a temporary name, synced, then renamed. */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { NotFoundError, ScriptoriumError } from '../core/errors.js';
import { checkKey, checkPrefix, type Store, type StoreCapabilities, type StoreEntry } from './store.js';

/** Prefix of the temporary files of unfinished puts; `list` skips them. */
export const TEMP_PREFIX = '.tmp-';

/**
 * A {@link Store} kept in a directory of the local file system. `put` is atomic and durable: the data
 * goes to `.tmp-<random>` beside the final name, is fsynced, renamed over the final name, and the
 * directory is fsynced. A crash leaves at most a `.tmp-` file, which `list` never reports.
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

  constructor(root: string) {
    if (typeof root !== 'string' || root === '') throw new TypeError('FsStore needs a directory path');
    this.#root = resolve(root);
    this.location = this.#root;
  }

  #path(key: string): string {
    checkKey(key);
    return join(this.#root, ...key.split('/'));
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.#path(key);
    const dir = dirname(path);
    await this.#io('put', key, async () => {
      const temp = join(dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
      let created: string | undefined;
      try {
        const [handle, made] = await inDirectory(dir, () => open(temp, 'wx'));
        created = made;
        try {
          await handle.writeFile(data);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temp, path);
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw err;
      }
      await syncPlaced(dir, created);
    });
  }

  tempPrefix(): string {
    return join(this.#root, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}-`);
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
        [, created] = await inDirectory(dir, () => rename(path, final));
      } catch (err) {
        await unlink(path).catch(() => undefined);
        throw err;
      }
      await syncPlaced(dir, created);
    });
  }

  async get(key: string): Promise<Buffer> {
    const path = this.#path(key);
    return this.#io('get', key, () => readFile(path));
  }

  async has(key: string): Promise<boolean> {
    const path = this.#path(key);
    try {
      await stat(path);
      return true;
    } catch (err) {
      if (errno(err) === 'ENOENT') return false;
      throw ioError('has', this.location, key, err);
    }
  }

  async stat(key: string): Promise<StoreEntry> {
    const path = this.#path(key);
    const st = await this.#io('stat', key, () => stat(path));
    return { key, size: st.size };
  }

  async *list(prefix: string): AsyncIterable<StoreEntry> {
    checkPrefix(prefix);
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    yield* this.#walk(base, prefix);
  }

  async *#walk(dirKey: string, prefix: string): AsyncGenerator<StoreEntry> {
    const dir = dirKey === '' ? this.#root : join(this.#root, ...dirKey.split('/'));
    let names: import('node:fs').Dirent[];
    try {
      names = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return;
      throw ioError('list', this.location, prefix, err);
    }
    for (const entry of names) {
      if (entry.name.startsWith('.')) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(key + '/')) yield* this.#walk(key, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        try {
          yield { key, size: (await stat(join(dir, entry.name))).size };
        } catch (err) {
          if (errno(err) !== 'ENOENT') throw ioError('list', this.location, prefix, err);
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key);
    try {
      await unlink(path);
    } catch (err) {
      if (errno(err) !== 'ENOENT') throw ioError('delete', this.location, key, err);
    }
  }

  async close(): Promise<void> {}

  async removeStaleTemporaries(olderThanMs: number): Promise<number> {
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries: import('node:fs').Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory() && !entry.name.startsWith('.')) await walk(path);
        else if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX)) {
          const st = await stat(path).catch(() => undefined);
          if (st && Date.now() - st.mtimeMs > olderThanMs) {
            await unlink(path).catch(() => undefined);
            removed++;
          }
        }
      }
    };
    await walk(this.#root);
    return removed;
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

/**
 * Runs `op`, which creates a file in `dir`; when it fails with ENOENT, creates `dir` and runs it once
 * more (most puts go to a directory that exists: try first, create it only when missing). Returns op's
 * result and the first directory mkdir made, if it made any.
 */
async function inDirectory<T>(dir: string, op: () => Promise<T>): Promise<[T, string | undefined]> {
  try {
    return [await op(), undefined];
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw err;
    const created = await mkdir(dir, { recursive: true });
    return [await op(), created];
  }
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
  const handle = await open(dir, 'r');
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

function ioError(op: string, location: string, key: string, err: unknown): ScriptoriumError {
  if (err instanceof ScriptoriumError || err instanceof TypeError) return err as ScriptoriumError;
  const reason = errno(err) ?? (err instanceof Error ? err.message : String(err));
  return new ScriptoriumError('E_IO', `fs: ${op} ${key}: ${reason} (${location}${sep})`, {
    cause: err,
    hint: 'check that the repository directory exists, is writable and has free space',
  });
}
