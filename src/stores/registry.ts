/** The explicit registry of store backends, chosen by the scheme of a repository location. */
import { UsageError } from '../core/errors.js';
import { FsStore } from './fs-store.js';
import { MemoryStore } from './memory-store.js';
import type { S3StoreOptions } from './s3-store.js';
import type { Store } from './store.js';

/** Opens a store for a location of its scheme (`file:///x`, `memory:name`, or a plain path). */
export type StoreFactory = (location: string) => Store | Promise<Store>;

/** Store factories by URL scheme (without the colon); `file` also serves plain paths. */
export type StoreRegistry = ReadonlyMap<string, StoreFactory>;

/** Settings of the built-in backends that need any (the CLI's `--s3-*` options). */
export interface StoreSettings {
  s3?: S3StoreOptions;
  /** Called with each store the registry opens (the CLI reads an S3 store's request counts from it). */
  onOpen?: (store: Store) => void;
}

/**
 * The built-in backends: `file` (a local directory; plain paths too), `memory` (one fresh store per
 * call) and `s3` (`s3://bucket/prefix`; the AWS SDK is loaded only when one is opened).
 */
export function defaultStores(settings: StoreSettings = {}): StoreRegistry {
  const opened = <T extends Store>(store: T): T => {
    settings.onOpen?.(store);
    return store;
  };
  return new Map<string, StoreFactory>([
    ['file', (location) => opened(new FsStore(location.startsWith('file://') ? new URL(location).pathname : location))],
    ['memory', (location) => opened(new MemoryStore(location.slice('memory:'.length) || 'memory'))],
    ['s3', async (location) => opened(await (await import('./s3-store.js')).S3Store.open(location, settings.s3))],
  ]);
}

/**
 * Opens the store for `location`: a URL whose scheme names a registered backend, or a local path.
 *
 * @example
 * ```ts
 * const store = await openStore('/mnt/nas/backups');
 * ```
 */
export async function openStore(location: string, registry: StoreRegistry = defaultStores()): Promise<Store> {
  if (typeof location !== 'string' || location.trim() === '') {
    throw new UsageError('no repository given', { hint: 'pass --repo <dir> or set SCRIPTORIUM_REPO' });
  }
  const scheme = locationScheme(location);
  const factory = registry.get(scheme);
  if (factory === undefined) {
    throw new UsageError(`unknown repository location scheme "${scheme}:" in ${redact(location)}`, {
      hint: `supported: ${[...registry.keys()].map((s) => s + ':').join(', ')} or a local path`,
    });
  }
  return factory(location);
}

/** Removes credentials from a URL before it goes into a message. */
export function redact(location: string): string {
  // Up to the last `@`: a secret may itself hold a `/`.
  return location.replace(/^([a-z][a-z0-9+.-]*:\/\/).*@/is, '$1***@');
}

/** The scheme of a repository location that names its store (`file` for a plain path). */
export function locationScheme(location: string): string {
  const match = /^([a-z][a-z0-9+.-]*):/i.exec(location);
  // A one-letter scheme is a Windows drive letter, not a URL.
  return match && match[1]!.length > 1 ? match[1]!.toLowerCase() : 'file';
}
