/**
 * `prune`: deletes packs no snapshot references (left by forgotten snapshots or by interrupted
 * backups) and rewrites the index to match. It runs under the exclusive lock, so no backup is adding
 * chunks meanwhile. Order matters for crash safety: the new index is written first, then the old index
 * files are deleted, then the packs; an interrupted prune leaves only extra files for the next one.
 *
 * It deletes only repository objects (names that are valid object ids for their folder, see
 * objects.ts); anything else in the repository is a stray, reported and left alone. On a full disk,
 * where the new index cannot be written, it deletes the unused packs first and then writes the index:
 * still safe, since a backup loads only index entries of packs that exist, and restore never reads
 * the index.
 */
import { ScriptoriumError } from '../core/errors.js';
import type { EventListener } from '../core/events.js';
import { decodeIndex, encodeIndex, indexKey, type IndexedPack } from './chunk-index.js';
import { encodeFingerprintIndex, FINGERPRINT_BYTES, PACKS_PER_INDEX_FILE } from './fingerprint-index.js';
import { listed, writeSnapshotList, type SnapshotList } from './snapshot-list.js';
import { removeStaleLocks } from './locks.js';
import { findStrays, listObjects, MAX_BYTES } from './objects.js';
import { packKey } from './pack.js';
import { OperationReporter } from './progress.js';
import { heldObjects } from './held.js';
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
  /** Names in the repository that are not repository objects (links, foreign files): left alone. */
  strays: string[];
  /** Unused packs the store holds immutable (S3 Object Lock): kept (and indexed) until their retention ends. */
  packsHeld?: number;
  /** When the last of them may go (ISO time). */
  heldUntil?: string;
  /** The disk was full: unused packs were deleted before the new index was written. */
  freedSpaceFirst?: boolean;
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
      const lock = await lockOnFullDisk(repo, options.lockWaitMs ?? 0);
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

/**
 * Takes prune's exclusive lock. When even the lock cannot be written for lack of space, first removes
 * what needs no lock to remove (temporaries of killed writers on this host, which are often what filled
 * the disk, and stale locks, which every locker ignores anyway), then tries once more.
 */
async function lockOnFullDisk(repo: Repository, waitMs: number) {
  try {
    return await repo.lock('exclusive', 'prune', waitMs);
  } catch (err) {
    if (!(err instanceof ScriptoriumError && err.code === 'E_NO_SPACE')) throw err;
    const freed = (await repo.removeDeadTemporaries()) + (await removeStaleLocks(repo.store));
    if (freed === 0) {
      throw new ScriptoriumError('E_NO_SPACE', `${err.message}: prune needs room for its lock (a few kilobytes)`, {
        hint: 'Free a little space on the repository\'s disk (any file outside it), then run prune again: it frees the rest.',
        cause: err,
      });
    }
    return repo.lock('exclusive', 'prune', waitMs);
  }
}

async function pruneLocked(repo: Repository, dryRun: boolean, reporter: OperationReporter): Promise<PruneResult> {
  // A snapshot that cannot be listed (its folder or its file a link, a FIFO, a device) still uses its
  // packs: prune cannot tell which, so it deletes nothing rather than every pack of that snapshot.
  const strays = await findStrays(repo.store);
  const hidden = strays.filter((key) => key === 'snapshots' || /^snapshots\/[0-9a-f]{64}$/.test(key));
  if (hidden.length > 0) {
    throw new ScriptoriumError('E_CORRUPT', `prune: ${hidden.join(', ')} ${hidden.length === 1 ? 'is' : 'are'} not a regular ${hidden[0] === 'snapshots' ? 'folder' : 'file'} of the repository, so prune cannot tell which packs ${hidden[0] === 'snapshots' ? 'the snapshots' : 'that snapshot'} use; nothing was deleted`, {
      hint: 'Something other than scriptorium put it there. Replace it with the real folder or file (after looking at what it is), or remove it, then run prune again.',
    });
  }
  const used = new Set<string>();
  const all = await repo.snapshots();
  for (const snapshot of all) for (const pack of snapshot.packs) used.add(pack);
  const v2 = repo.config.version >= 2;
  const sizes = new Map<string, number>();
  for await (const { key, size } of listObjects(repo.store, 'packs/')) sizes.set(key.slice(key.lastIndexOf('/') + 1), size);
  // Unused packs still held by Object Lock stay, and stay indexed, until their retention ends.
  const held = await heldObjects(repo.store, [...sizes.keys()].filter((p) => !used.has(p)).map(packKey));
  for (const { key } of held.values()) used.add(key.slice(key.lastIndexOf('/') + 1));
  const unused = [...sizes.keys()].filter((p) => !used.has(p));

  // The index to keep: every used pack's entry hashes, taken from the old index or rebuilt from the pack.
  const known = new Map<string, IndexedPack>();
  const oldIndexFiles: string[] = [];
  /** Format 2: index files whose packs are all kept (and none listed elsewhere first), kept as they are. */
  const intact = new Set<string>();
  for await (const { key } of listObjects(repo.store, 'index/')) {
    oldIndexFiles.push(key);
    try {
      const packs = await decodeIndex(key.slice('index/'.length), await repo.store.get(key, { maxBytes: MAX_BYTES.index }));
      // A version-1 file in a version-2 repository does not occur; it would be rewritten below like any other.
      if (v2 && packs.every((p) => p.idBytes === FINGERPRINT_BYTES && used.has(p.hash) && sizes.has(p.hash) && !known.has(p.hash))) intact.add(key);
      for (const pack of packs) if (!known.has(pack.hash)) known.set(pack.hash, pack);
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
      pack = { hash, chunkIds: Buffer.from(Array.from({ length: opened.entries }, (_, e) => repo.chunkId(opened.chunkHash(e))).join(''), 'hex') };
    }
    kept.push(pack);
  }
  const result: PruneResult = {
    packsKept: kept.length, packsDeleted: unused.length, bytesDeleted: unused.reduce((a, p) => a + (sizes.get(p) ?? 0), 0),
    indexFilesWritten: 0, indexFilesDeleted: 0, staleLocksRemoved: 0, temporariesRemoved: 0, strays, dryRun,
    ...(held.size > 0 ? { packsHeld: held.size, heldUntil: [...held.values()].map((h) => h.until).sort().at(-1)! } : {}),
  };
  const indexed = [...known.keys()].filter((p) => used.has(p) && sizes.has(p)).length;
  const indexChanges = v2
    ? oldIndexFiles.length !== intact.size || indexed !== kept.length
    : unused.length > 0 || oldIndexFiles.length > 1 || known.size !== kept.length || indexed !== kept.length;
  if (dryRun) return result;
  const deleteUnused = async (): Promise<void> => {
    for (const pack of unused.splice(0)) {
      await repo.store.delete(packKey(pack));
      reporter.bytesOut += sizes.get(pack) ?? 0;
      reporter.progress('prune');
    }
  };
  let newList: SnapshotList | undefined;
  if (v2) {
    // Format 2: manifests name the index files of their packs (hints), so files whose packs are all
    // kept stay as they are; the others are rewritten, without the deleted packs, in files of at most
    // PACKS_PER_INDEX_FILE packs, then deleted. The snapshot list is rewritten from the manifests.
    const covered = new Set<string>();
    const keep = new Set<string>();
    for (const key of intact) {
      keep.add(key);
      for (const pack of (await decodeIndex(key.slice('index/'.length), await repo.store.get(key, { maxBytes: MAX_BYTES.index })))) covered.add(pack.hash);
    }
    const rest = kept.filter((p) => !covered.has(p.hash));
    for (let i = 0; i < rest.length && indexChanges; i += PACKS_PER_INDEX_FILE) {
      const { file, hash } = encodeFingerprintIndex(rest.slice(i, i + PACKS_PER_INDEX_FILE));
      try {
        await repo.store.put(indexKey(hash), file);
      } catch (err) {
        if (!(err instanceof ScriptoriumError && err.code === 'E_NO_SPACE') || unused.length === 0) throw err;
        await deleteUnused();
        result.freedSpaceFirst = true;
        await repo.store.put(indexKey(hash), file);
      }
      keep.add(indexKey(hash));
      result.indexFilesWritten++;
    }
    for (const key of oldIndexFiles) {
      if (keep.has(key)) continue;
      await repo.store.delete(key);
      result.indexFilesDeleted++;
    }
    newList = { version: 2, snapshots: all.map(listed), index: [...keep].map((k) => k.slice('index/'.length)), config: repo.configHash };
  } else if (indexChanges) {
    let newKey: string | undefined;
    if (kept.length > 0) {
      const { file, hash } = await encodeIndex(kept);
      newKey = indexKey(hash);
      try {
        await repo.store.put(newKey, file);
      } catch (err) {
        if (!(err instanceof ScriptoriumError && err.code === 'E_NO_SPACE') || unused.length === 0) throw err;
        // A full disk: free the space of the unused packs first, then write the index (see the top).
        await deleteUnused();
        result.freedSpaceFirst = true;
        await repo.store.put(newKey, file);
      }
      result.indexFilesWritten = 1;
    }
    const heldIndex = await heldObjects(repo.store, oldIndexFiles.filter((key) => key !== newKey));
    for (const key of oldIndexFiles) {
      if (key === newKey || heldIndex.has(key)) continue; // a held index file stays: its entries are in the new one too
      await repo.store.delete(key);
      result.indexFilesDeleted++;
    }
  }
  // Before the packs go: a list naming a forgotten snapshot must not outlive its packs, since a backup
  // on a remote store takes the listed snapshots' packs as present (parent-index.ts). On a full disk,
  // after the packs, so that there is room for it by then (a local store checks the packs anyway).
  let listWritten = false;
  if (newList && unused.length > 0) {
    try {
      await writeSnapshotList(repo.store, newList);
      listWritten = true;
    } catch (err) {
      if (!(err instanceof ScriptoriumError && err.code === 'E_NO_SPACE')) throw err;
    }
  }
  await deleteUnused();
  if (newList && !listWritten) await writeSnapshotList(repo.store, newList);
  result.staleLocksRemoved = await removeStaleLocks(repo.store);
  // Temporary files of puts interrupted by a crash; an hour's margin spares any put still running.
  result.temporariesRemoved = (await repo.store.removeStaleTemporaries?.(TEMPORARY_GRACE_MS)) ?? 0;
  return result;
}
