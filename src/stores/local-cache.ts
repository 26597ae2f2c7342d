/**
 * A local cache of a remote store's immutable metadata objects (index files and snapshot manifests),
 * under the user's cache directory, so that `snapshots`, `backup` and `restore` do not download them
 * again. Each entry records the SHA-256 of its content and is checked against it on every use: a
 * damaged entry is removed and the object fetched again, never trusted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const MAGIC = 'scriptorium-cache-1\n';
/** Entry layout: MAGIC, 64 hex digits of the content's SHA-256, '\n', the content. */
const HEADER_BYTES = MAGIC.length + 65;

/**
 * The user's cache directory for scriptorium: `$SCRIPTORIUM_CACHE_DIR`, else `$XDG_CACHE_HOME/scriptorium`,
 * else `~/.cache/scriptorium`. `SCRIPTORIUM_CACHE_DIR=off` turns the cache off (undefined).
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SCRIPTORIUM_CACHE_DIR === 'off') return undefined;
  if (env.SCRIPTORIUM_CACHE_DIR) return env.SCRIPTORIUM_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'scriptorium');
}

/** One remote store's corner of the cache. Failures to read or write it only cost a download. */
export class LocalCache {
  readonly #root: string;
  hits = 0;
  /** Entries found damaged (and fetched again). */
  damaged = 0;

  /** `identity` names the remote store (endpoint, bucket, prefix): it is hashed into the folder name. */
  constructor(cacheDir: string, identity: string) {
    this.#root = join(cacheDir, 'objects', createHash('sha256').update(identity).digest('hex').slice(0, 32));
  }

  /** Where `key`'s entry lives (keys are valid store keys: no `..`, no leading `.`). */
  path(key: string): string {
    return join(this.#root, ...key.split('/'));
  }

  /** The cached content of `key`, or undefined (missing, damaged: removed, or longer than `maxBytes`). */
  async get(key: string, maxBytes?: number): Promise<Buffer | undefined> {
    let file: Buffer;
    try {
      file = await readFile(this.path(key));
    } catch {
      return undefined;
    }
    const header = file.subarray(0, HEADER_BYTES).toString('latin1');
    const data = file.subarray(HEADER_BYTES);
    const ok = header.startsWith(MAGIC) && header.endsWith('\n') && header.slice(MAGIC.length, MAGIC.length + 64) === createHash('sha256').update(data).digest('hex');
    if (!ok) {
      this.damaged++;
      await unlink(this.path(key)).catch(() => undefined);
      return undefined;
    }
    if (maxBytes !== undefined && data.length > maxBytes) return undefined; // the store refuses it, from the source
    this.hits++;
    return data;
  }

  /** Records `data` as `key`'s content (atomically: a temporary file renamed into place). */
  async put(key: string, data: Buffer): Promise<void> {
    const path = this.path(key);
    const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const handle = await open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(Buffer.concat([Buffer.from(MAGIC + createHash('sha256').update(data).digest('hex') + '\n', 'latin1'), data]));
      } finally {
        await handle.close();
      }
      await rename(temp, path);
    } catch {
      await unlink(temp).catch(() => undefined); // a cache that cannot be written is no cache, not an error
    }
  }

  async delete(key: string): Promise<void> {
    await unlink(this.path(key)).catch(() => undefined);
  }
}
