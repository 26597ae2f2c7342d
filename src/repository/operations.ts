/** `init` and `snapshots`: the two repository operations that are one call each. */
import type { EventListener } from '../core/events.js';
import type { RepositorySettings } from './config.js';
import type { EncryptionSettings } from './crypto/repository-crypto.js';
import type { Snapshot } from './manifest.js';
import { OperationReporter } from './progress.js';
import { Repository, withRepository, type OpenOptions, type RepositoryLocation } from './repository.js';

/**
 * Creates a repository and returns its config. Throws E_TARGET_EXISTS if `location` is not empty.
 *
 * @example
 * ```ts
 * const { id } = await init('/mnt/nas/backups', { compression: 'zstd', compressionLevel: 6 });
 * ```
 */
export async function init(location: RepositoryLocation, settings: RepositorySettings & OpenOptions & { onEvent?: EventListener; encryption?: EncryptionSettings } = {}) {
  const reporter = new OperationReporter('init', settings.onEvent);
  return reporter.run(async () => {
    reporter.started({ target: typeof location === 'string' ? location : location.location });
    const repo = await Repository.init(location, settings, settings);
    const config = repo.config;
    if (typeof location === 'string') await repo.close();
    reporter.completed({ id: config.id });
    return config;
  });
}

/** One line of `scriptorium snapshots`. */
export interface SnapshotSummary {
  id: string;
  time: string;
  host: string;
  source: string;
  tags: string[];
  tables: number;
  rows: number;
  /** Logical size (bytes of row encodings). */
  bytes: number;
  /** Bytes the backup added to the repository, its manifest included. */
  storedBytes: number;
  newChunks: number;
  chunks: number;
}

/**
 * Lists the repository's snapshots, oldest first.
 *
 * @example
 * ```ts
 * for (const s of await snapshots('/mnt/nas/backups')) console.log(s.id.slice(0, 8), s.time, s.rows);
 * ```
 */
export async function snapshots(repository: RepositoryLocation | Repository, options: OpenOptions = {}): Promise<SnapshotSummary[]> {
  return withRepository(repository, options, async (repo) => (await repo.snapshots()).map(summarize));
}

export function summarize(s: Snapshot): SnapshotSummary {
  return {
    id: s.id, time: s.time, host: s.host, source: s.source, tags: s.tags, tables: s.tables.length, rows: s.stats.rows,
    bytes: s.stats.bytes, storedBytes: s.stats.storedBytes + s.manifestBytes, newChunks: s.stats.newChunks, chunks: s.stats.chunks,
  };
}
