/**
 * `prune`: deletes packs no snapshot references (left by forgotten snapshots or by interrupted
 * backups) and rewrites the index to match. It runs under the exclusive lock, so no backup is adding
 * chunks meanwhile. Order matters for crash safety: the new index is written first, then the old index
 * files are deleted, then the packs; an interrupted prune leaves only extra files for the next one.
 */
import type { EventListener } from '../core/events.js';
import { decodeIndex, encodeIndex, indexKey, type IndexedPack } from './chunk-index.js';
import { removeStaleLocks } from './locks.js';
import { packKey } from './pack.js';
import { OperationReporter } from './progress.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from './repository.js';

const TEMPORARY_GRACE_MS = 60 * 60_000;

export interface PruneOptions extends OpenOptions {
  /** Report what would be deleted without deleting anything. */
  dryRun?: boolean;
  onEvent?: EventListener;
  /** How long to wait for running backups to finish (default 0: fail at once with E_LOCKED). */
  lockWaitMs?: number;
}

export interface PruneResult {
  packsKept: number;
  packsDeleted: number;
  bytesDeleted: number;
  indexFilesWritten: number;
  indexFilesDeleted: number;
  staleLocksRemoved: number;
  /** Temporary files of interrupted writes (older than an hour) removed. */
  temporariesRemoved: number;
  dryRun: boolean;
}

/**
 * Deletes unreferenced packs. Refuses (E_CORRUPT) when a manifest cannot be read, since it could not
 * know what that snapshot needs; forget the damaged snapshot by id first.
 *
 * @example
 * ```ts
 * const { packsDeleted, bytesDeleted } = await prune('/mnt/nas/backups');
 * ```
 */
export async function prune(repository: RepositoryLocation | Repository, options: PruneOptions = {}): Promise<PruneResult> {
  const reporter = new OperationReporter('prune', options.onEvent);
  return reporter.run(() =>
    withRepository(repository, options, async (repo) => {
      const lock = await repo.lock('exclusive', 'prune', options.lockWaitMs ?? 0);
      try {
        reporter.started({ target: repo.location });
        const result = await pruneLocked(repo, options.dryRun ?? false, reporter);
        reporter.completed({ ...result });
        return result;
      } finally {
        await lock.release();
      }
    }),
  );
}

async function pruneLocked(repo: Repository, dryRun: boolean, reporter: OperationReporter): Promise<PruneResult> {
  const used = new Set<string>();
  for (const snapshot of await repo.snapshots()) for (const pack of snapshot.packs) used.add(pack);
  const sizes = new Map<string, number>();
  for await (const { key, size } of repo.store.list('packs/')) sizes.set(key.slice(key.lastIndexOf('/') + 1), size);
  const unused = [...sizes.keys()].filter((p) => !used.has(p));

  // The index to keep: every used pack's entry hashes, taken from the old index or rebuilt from the pack.
  const known = new Map<string, IndexedPack>();
  const oldIndexFiles: string[] = [];
  for await (const { key } of repo.store.list('index/')) {
    oldIndexFiles.push(key);
    try {
      for (const pack of await decodeIndex(key.slice('index/'.length), await repo.store.get(key))) known.set(pack.hash, pack);
    } catch {
      // a damaged index file is replaced by the rebuilt one below
    }
  }
  const kept: IndexedPack[] = [];
  for (const hash of [...used].sort()) {
    if (!sizes.has(hash)) continue; // missing pack: verify reports it; nothing to index
    let pack = known.get(hash);
    if (!pack) {
      const opened = await repo.pack(hash);
      pack = { hash, chunkIds: Buffer.from(Array.from({ length: opened.entries }, (_, e) => opened.chunkHash(e)).join(''), 'hex') };
    }
    kept.push(pack);
  }
  const result: PruneResult = {
    packsKept: kept.length, packsDeleted: unused.length, bytesDeleted: unused.reduce((a, p) => a + (sizes.get(p) ?? 0), 0),
    indexFilesWritten: 0, indexFilesDeleted: 0, staleLocksRemoved: 0, temporariesRemoved: 0, dryRun,
  };
  const indexed = [...known.keys()].filter((p) => used.has(p) && sizes.has(p)).length;
  const indexChanges = unused.length > 0 || oldIndexFiles.length > 1 || known.size !== kept.length || indexed !== kept.length;
  if (dryRun) return result;
  if (indexChanges) {
    let newKey: string | undefined;
    if (kept.length > 0) {
      const { file, hash } = await encodeIndex(kept);
      newKey = indexKey(hash);
      await repo.store.put(newKey, file);
      result.indexFilesWritten = 1;
    }
    for (const key of oldIndexFiles) {
      if (key === newKey) continue;
      await repo.store.delete(key);
      result.indexFilesDeleted++;
    }
  }
  for (const pack of unused) {
    await repo.store.delete(packKey(pack));
    reporter.bytesOut += sizes.get(pack) ?? 0;
    reporter.progress('prune');
  }
  result.staleLocksRemoved = await removeStaleLocks(repo.store);
  // Temporary files of puts interrupted by a crash; an hour's margin spares any put still running.
  result.temporariesRemoved = (await repo.store.removeStaleTemporaries?.(TEMPORARY_GRACE_MS)) ?? 0;
  return result;
}
