/**
 * The checks of a snapshot against the objects it names, run before anything is allocated for it (a
 * restore's target, a diff's chunk sets, verify's reading): every pack it names exists, and every range
 * `[pack, first, count]` lies inside that pack's entries. The manifest's own shape was checked when it
 * was decoded (manifest-check.ts). Verify, restore and diff share these checks.
 *
 * A range is checked against the entry count an index file gives for its pack; since an index is a
 * cache that may be wrong, a range beyond it is confirmed against the pack's own entry table before it
 * is reported. A pack no index knows is opened only when the caller asks for certainty (`openUnindexed`):
 * restore does not need it, since it checks each pack's entry count as it opens the pack.
 */
import { NotFoundError, ScriptoriumError } from '../core/errors.js';
import { GarbageGate } from '../core/memory.js';
import { decodeIndex, indexedEntries, indexKey } from './chunk-index.js';
import { RepositoryIntegrityError, type Problem } from './errors.js';
import type { Snapshot } from './manifest.js';
import { listObjects, MAX_BYTES } from './objects.js';
import { packKey } from './pack.js';
import type { Repository } from './repository.js';
import { chunkName } from './snapshot-reader.js';

/** What the checks know of the packs before reading any. */
export interface PackFacts {
  /** Whether the store holds pack `hash`. */
  exists(hash: string): boolean;
  /** The entry count an index file lists for pack `hash`, or undefined when none lists it. */
  indexed(hash: string): number | undefined;
  /** Why pack `hash`, which does not exist as an object, is absent (default: "is missing"). */
  absent?(hash: string): string | undefined;
}

export interface ReferenceCheckOptions {
  /** Open the packs no index knows, to check their ranges too (default false). */
  openUnindexed?: boolean;
  /** The chunk name for a problem at `(pack, entry)` (default `<pack>#<entry>`). */
  chunkName?: (pack: string, entry: number) => string | Promise<string>;
}

/**
 * Every problem of `snapshot`'s references: missing packs, and ranges beyond a pack's entries, each
 * naming the snapshot, table, chunk and pack. Packs opened to confirm a range are read from the store
 * one at a time and not kept.
 */
export async function referenceProblems(repo: Repository, snapshot: Snapshot, facts: PackFacts, options: ReferenceCheckOptions = {}): Promise<Problem[]> {
  const problems: Problem[] = [];
  const name = options.chunkName ?? ((pack: string, entry: number) => `${pack.slice(0, 16)}#${entry}`);
  /** Entry counts read from the packs themselves (a message when the pack cannot be read). */
  const actual = new Map<string, number | string>();
  const entriesOf = async (hash: string): Promise<number | string> => {
    let n = actual.get(hash);
    if (n !== undefined) return n;
    try {
      const pack = await repo.pack(hash);
      n = pack.entries;
      pack.release();
    } catch (err) {
      if (!(err instanceof ScriptoriumError)) throw err;
      n = err.message;
    }
    actual.set(hash, n);
    return n;
  };
  for (const table of snapshot.tables) {
    const reported = new Set<string>();
    for (const [p, first, count] of table.chunks) {
      const pack = snapshot.packs[p];
      if (reported.has(pack)) continue;
      const report = async (message: string, entry: number): Promise<void> => {
        reported.add(pack);
        problems.push({ code: 'E_CORRUPT', snapshot: snapshot.id, table: table.name, chunk: await name(pack, entry), pack, message });
      };
      if (!facts.exists(pack)) {
        await report(`pack ${pack.slice(0, 16)} ${facts.absent?.(pack) ?? 'is missing'}`, first);
        continue;
      }
      const end = first + count;
      const indexed = facts.indexed(pack);
      if (indexed === undefined && !options.openUnindexed) continue;
      if (indexed !== undefined && end <= indexed) continue;
      const n = await entriesOf(pack);
      if (typeof n === 'string') await report(n, first);
      else if (end > n) await report(`entries ${first}..${end - 1} of pack ${pack.slice(0, 16)} are named, but it has ${n}`, Math.min(first, n));
    }
  }
  return problems;
}

/**
 * Checks `snapshot`'s references before `operation` uses it: throws RepositoryIntegrityError
 * (E_CORRUPT) naming every missing pack and every range beyond its pack. Reads one index file at a time,
 * keeping only the counts of this snapshot's packs. Returns the file size of each pack it looked at
 * (on a local store; none on a remote one, which is not asked): a hint for the reader, not a fact.
 */
export async function checkSnapshot(repo: Repository, snapshot: Snapshot, operation: string, options: Pick<ReferenceCheckOptions, 'openUnindexed'> = {}): Promise<ReadonlyMap<string, number>> {
  const wanted = new Set(snapshot.packs);
  const present = new Set<string>();
  // A remote store is not asked (a HEAD a pack, each a billed round trip): a missing pack fails the
  // read of its chunks (NotFoundError), and restore then removes what it wrote; the ranges are still
  // checked against the counts the index files know, and every read is bounded by the pack size limit.
  const remote = repo.store.capabilities.remote === true;
  if (remote) for (const hash of wanted) present.add(hash);
  const queue = remote ? [] : [...wanted];
  // A local store is asked each pack's size (one lstat, as `has` was): restore decides from it which
  // packs to read in pieces, without a second look (restore-pack.ts, where the size is only a bound).
  const sizes = new Map<string, number>();
  await Promise.all(Array.from({ length: Math.min(repo.store.capabilities.maxConcurrency, queue.length) }, async () => {
    for (let hash = queue.shift(); hash !== undefined; hash = queue.shift()) {
      try {
        sizes.set(hash, (await repo.store.stat(packKey(hash))).size);
        present.add(hash);
      } catch (err) {
        if (err instanceof NotFoundError) continue;
        if (!(err instanceof ScriptoriumError && err.code === 'E_CORRUPT')) throw err;
        // Something that is no object (a link, a FIFO): whatever `has` says of it, as before (a read reports it).
        if (await repo.store.has(packKey(hash))) present.add(hash);
      }
    }
  }));
  const counts = new Map<string, number>();
  // Format 2: the index files the manifest names (GETs of what is needed, no listing); a file that
  // prune has replaced since is missing, and its packs' ranges are confirmed against the packs if asked.
  const keys = snapshot.version === 2 && snapshot.index ? snapshot.index.map(indexKey) : undefined;
  // Each index file (about 1 MiB) is garbage once its counts are taken; outside the V8 heap, V8 would let
  // tens of them pile up before collecting (measured: 26 MB of them at the start of a 10M-row restore).
  const gate = new GarbageGate();
  for await (const key of keys ?? listKeys(repo)) {
    let packs;
    try {
      const data = await repo.store.get(key, { maxBytes: MAX_BYTES.index });
      gate.add(data.length);
      packs = await decodeIndex(key.slice('index/'.length), data);
    } catch (err) {
      if (err instanceof ScriptoriumError) continue; // a damaged index only costs deduplication; verify reports it
      throw err;
    }
    for (const pack of packs) {
      // Several index files may list a pack: keep the largest count, the pack confirms any range beyond it.
      if (wanted.has(pack.hash)) counts.set(pack.hash, Math.max(counts.get(pack.hash) ?? 0, indexedEntries(pack)));
    }
  }
  const problems = await referenceProblems(repo, snapshot, { exists: (h) => present.has(h), indexed: (h) => counts.get(h) }, {
    ...options,
    chunkName: (pack, entry) => chunkName(repo, pack, entry),
  });
  if (problems.length > 0) throw new RepositoryIntegrityError(problems, operation);
  return sizes;
}

async function* listKeys(repo: Repository): AsyncGenerator<string> {
  for await (const { key } of listObjects(repo.store, 'index/')) yield key;
}
