/**
 * `verify`: checks a repository. Always: the config, every manifest (hash, format), every index file,
 * and that every chunk a snapshot references exists. With `readData`: reads and decompresses every
 * pack, checks each chunk against the hash the index gives it, and recomputes every table's digest;
 * packs that no snapshot references (left by an interrupted backup) are read too, since a later backup
 * that finds their chunks in the index reuses them instead of storing them again. With `drill`: restores the latest snapshot into a temporary database and compares it.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntegrityError, ScriptoriumError, UsageError } from '../core/errors.js';
import type { EngineName } from '../engines/engine.js';
import { resolveLocation } from '../engines/registry.js';
import type { EventListener } from '../core/events.js';
import { ChunkIndex, decodeIndex } from './chunk-index.js';
import { RepositoryIntegrityError, type Problem } from './errors.js';
import type { Snapshot, TableEntry } from './manifest.js';
import { findStrays, isObjectKey, listObjects, MAX_BYTES } from './objects.js';
import { packKey, type Pack } from './pack.js';
import { OperationReporter } from './progress.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from './repository.js';
import { restore } from './restore.js';
import { lazyPackBytes, StreamingPackCache } from './restore-pack.js';
import { manifestSchemaProblems } from './schema-check.js';
import { referenceProblems } from './snapshot-check.js';
import { packOrder, readTable } from './snapshot-reader.js';

export interface VerifyOptions extends OpenOptions {
  /** Read every pack (referenced or not), check every chunk and recompute every table digest. */
  readData?: boolean;
  /** Restore the latest snapshot into a temporary database and compare it with its manifest. */
  drill?: boolean;
  /**
   * Read only part `part` of `of` of the referenced packs (restic's `--read-data-subset=part/of`): each
   * pack is read, checked against its name and its chunks against the index's hashes. The parts are
   * fixed by the packs' names, so running parts 1 to `of` in turn reads every pack once.
   */
  readDataSubset?: { part: number; of: number };
  onEvent?: EventListener;
  lockWaitMs?: number;
  /** With `drill`: the database to restore into instead of a temporary file (PostgreSQL: in a transaction that is rolled back). */
  drillInto?: string;
  /** The engine of `drillInto` when its location does not say. */
  engine?: EngineName;
  /** PostgreSQL: processes per index build of the drill. */
  jobs?: number;
}

export interface VerifyReport {
  snapshots: number;
  packs: number;
  /**
   * Packs that no snapshot references and that readData read and checked (0 without readData). They
   * are not problems (prune removes them), but a damaged one is: a later backup could reuse its chunks.
   */
  unreferencedPacks: number;
  /** Chunk references checked (and, with readData, chunks read). */
  chunks: number;
  tablesRead: number;
  /** Packs read by `readDataSubset`. */
  packsRead?: number;
  drilled?: string;
  problems: Problem[];
  /** Names in the repository that are not repository objects (links, foreign files): not problems, left alone. */
  strays: string[];
}

/**
 * Verifies the repository. Resolves with a report when no problem is found; otherwise throws a
 * RepositoryIntegrityError whose `problems` lists every one, each naming snapshot, table and chunk.
 *
 * @example
 * ```ts
 * const report = await verify('/mnt/nas/backups', { readData: true });
 * ```
 */
export async function verify(repository: RepositoryLocation | Repository, options: VerifyOptions = {}): Promise<VerifyReport> {
  const reporter = new OperationReporter('verify', options.onEvent);
  return reporter.run(() =>
    withRepository(repository, options, async (repo) => {
      const lock = await repo.lock('shared', 'verify', options.lockWaitMs ?? 60_000);
      try {
        const report = await runChecks(repo, options, reporter);
        if (report.problems.length > 0) throw new RepositoryIntegrityError(report.problems, 'verify');
        reporter.completed({ snapshots: report.snapshots, packs: report.packs, chunks: report.chunks, readData: !!options.readData });
        return report;
      } finally {
        await lock.release();
      }
    }),
  );
}

async function runChecks(repo: Repository, options: VerifyOptions, reporter: OperationReporter): Promise<VerifyReport> {
  const problems: Problem[] = [];
  const snapshots: Snapshot[] = [];
  for (const id of await repo.snapshotIds()) {
    try {
      const snapshot = await repo.snapshot(id);
      snapshots.push(snapshot);
      problems.push(...manifestSchemaProblems(snapshot)); // schema SQL that restore would refuse to run
    } catch (err) {
      problems.push(asProblem(err, { snapshot: id }));
    }
  }
  reporter.started({ target: repo.location, totalRows: snapshots.reduce((a, s) => a + s.stats.rows, 0), tables: snapshots.length });
  const index = new ChunkIndex();
  /** Index files per pack they list, to name them when the pack is missing or disagrees with them. */
  const indexedIn = new Map<string, string[]>();
  for await (const { key } of listObjects(repo.store, 'index/')) {
    const name = key.slice('index/'.length);
    try {
      const packs = await decodeIndex(name, await repo.store.get(key, { maxBytes: MAX_BYTES.index }));
      index.addIndexed(packs);
      for (const pack of packs) indexedIn.set(pack.hash, [...(indexedIn.get(pack.hash) ?? []), name]);
    } catch (err) {
      problems.push(asProblem(err, {}));
    }
  }
  const existing = new Set<string>();
  /** Each pack file's size as listed: which to read in pieces, without a stat each (a hint: see StreamingPackCache). */
  const sizes = new Map<string, number>();
  for await (const { key, size } of listObjects(repo.store, 'packs/')) {
    existing.add(key.slice(key.lastIndexOf('/') + 1));
    sizes.set(key.slice(key.lastIndexOf('/') + 1), size);
  }
  const report: VerifyReport = { snapshots: snapshots.length, packs: 0, unreferencedPacks: 0, chunks: 0, tablesRead: 0, problems, strays: await findStrays(repo.store) };
  const strays = new Set(report.strays);
  // A link (or FIFO, device) under a manifest's own name stands where a snapshot belongs: nothing reads
  // it, so the snapshot would simply drop out of the list, and `latest` mean the one before. (Other
  // strays are left alone and reported; a pack that a snapshot uses is a problem of that snapshot, below.)
  for (const key of report.strays) {
    if (!key.startsWith('snapshots/') || !isObjectKey(key)) continue;
    problems.push({ code: 'E_CORRUPT', snapshot: key.slice('snapshots/'.length), message: `${key} is not a regular file (a link, a FIFO, a device) where a snapshot's manifest belongs: it is never read, so that snapshot is missing` });
  }
  const referenced = new Set<string>();
  const facts = {
    exists: (hash: string) => existing.has(hash),
    indexed: (hash: string) => {
      const ordinal = index.packOrdinal(hash);
      return ordinal >= 0 ? index.packEntries(ordinal) : undefined;
    },
    absent: (hash: string) => (strays.has(packKey(hash)) ? 'is not a regular file (a link, a FIFO, a device): never read' : undefined),
  };
  for (const snap of snapshots) {
    for (const table of snap.tables) {
      for (const [p, , count] of table.chunks) {
        referenced.add(snap.packs[p]);
        report.chunks += count;
      }
    }
    // Missing packs, and ranges beyond their pack's entries (confirmed against the pack itself).
    problems.push(...(await referenceProblems(repo, snap, facts, { chunkName: (pack, entry) => chunkId(index, pack, entry) })));
  }
  // A missing pack that a snapshot uses is reported above, with the snapshot; here the index's others.
  for (const [pack, files] of indexedIn) {
    if (!existing.has(pack) && !referenced.has(pack)) {
      problems.push({ code: 'E_CORRUPT', pack, message: `index ${files[0].slice(0, 16)} lists pack ${pack.slice(0, 16)}, which is missing (\`scriptorium prune\` rewrites the index)` });
    }
  }
  report.packs = referenced.size;
  reporter.progress('verify', undefined, true);
  const unreferenced = [...existing].filter((hash) => !referenced.has(hash) && !strays.has(packKey(hash))).sort();
  if (options.readData) await readData(repo, snapshots, index, unreferenced, report, reporter, sizes);
  else if (options.readDataSubset) await readPackSubset(repo, [...referenced, ...unreferenced], index, report, options.readDataSubset, sizes);
  if (options.drill && snapshots.length > 0 && problems.length === 0) report.drilled = await drill(repo, problems, options);
  return report;
}

/**
 * Streams every distinct table of every snapshot, checking packs, chunk hashes and digests; then opens
 * every pack in `unreferenced` (no snapshot uses it) and checks it the same way: its name, its
 * compression and entry table, and its chunks against the index.
 */
async function readData(
  repo: Repository,
  snapshots: Snapshot[],
  index: ChunkIndex,
  unreferenced: string[],
  report: VerifyReport,
  reporter: OperationReporter,
  sizes: ReadonlyMap<string, number>,
): Promise<void> {
  const checked = new Set<string>();
  // Every distinct table once (the same chunks of the same digest are not read twice), then the packs
  // no snapshot uses: the order the cache evicts by.
  const tables: Array<[Snapshot, TableEntry]> = [];
  const seen = new Set<string>();
  for (const snap of snapshots) {
    for (const table of snap.tables) {
      const key = `${table.sha256}:${JSON.stringify(table.chunks.map(([p, f, c]) => [snap.packs[p], f, c]))}`;
      if (seen.has(key)) continue;
      seen.add(key);
      tables.push([snap, table]);
    }
  }
  seen.clear();
  const order = (function* () {
    for (const [snap, table] of tables) yield* packOrder(snap, [table]);
    yield* unreferenced;
  })();
  const cache = new CheckingCache(repo, order, sizes, async (pack) => {
    if (checked.has(pack.hash)) return;
    checked.add(pack.hash);
    const ordinal = index.packOrdinal(pack.hash);
    if (ordinal >= 0 && index.packEntries(ordinal) !== pack.entries) {
      report.problems.push({ code: 'E_CORRUPT', pack: pack.hash, message: `the index lists ${index.packEntries(ordinal)} entries for pack ${pack.hash.slice(0, 16)}, which has ${pack.entries} (\`scriptorium prune\` rewrites the index)` });
    }
    if (ordinal >= 0) await checkChunks(repo, index, ordinal, pack, report);
  });
  for (const [snap, table] of tables) {
    try {
      for await (const batch of readTable(repo, cache, snap, table, 'verify')) {
        reporter.rowsDone += batch.rows;
        reporter.bytesIn += batch.data.length + 1;
        // A chunk of a huge row comes in pieces: reading them is what hashes them into the digest.
        if (batch.pieces) for await (const piece of batch.pieces) reporter.bytesIn += piece.length;
        reporter.progress('verify', table.name);
      }
      report.tablesRead++;
    } catch (err) {
      if (err instanceof RepositoryIntegrityError) report.problems.push(...err.problems);
      else report.problems.push(asProblem(err, { snapshot: snap.id, table: table.name }));
    }
  }
  for (const hash of unreferenced) {
    if (checked.has(hash)) continue;
    try {
      await cache.get(hash);
      report.unreferencedPacks++;
    } catch (err) {
      const p = asProblem(err, { pack: hash });
      report.problems.push({
        ...p,
        message: `unreferenced pack ${hash.slice(0, 16)} (no snapshot uses it; a later backup may reuse its chunks) is damaged: ${p.message} (\`scriptorium prune\` removes it)`,
      });
    }
    reporter.progress('verify');
  }
  await cache.close();
}

/** Which of `of` parts a pack belongs to (1-based), from the first 32 bits of its name. */
export function packPart(hash: string, of: number): number {
  return (Number.parseInt(hash.slice(0, 8), 16) % of) + 1;
}

/** Reads the referenced packs of one part: each is checked against its name, its chunks against the index. */
async function readPackSubset(repo: Repository, packs: string[], index: ChunkIndex, report: VerifyReport, subset: { part: number; of: number }, sizes: ReadonlyMap<string, number>): Promise<void> {
  const { part, of } = subset;
  if (!(Number.isSafeInteger(of) && of >= 1 && Number.isSafeInteger(part) && part >= 1 && part <= of)) {
    throw new ScriptoriumError('E_USAGE', `verify: readDataSubset must be part/of with 1 <= part <= of, got ${part}/${of}`);
  }
  report.packsRead = 0;
  const order = packs.filter((hash) => packPart(hash, of) === part).sort();
  const cache = new CheckingCache(repo, order, sizes, async (pack) => {
    const ordinal = index.packOrdinal(pack.hash);
    if (ordinal >= 0) await checkChunks(repo, index, ordinal, pack, report);
  });
  try {
    for (const hash of order) {
      try {
        await cache.get(hash);
        report.packsRead++;
      } catch (err) {
        report.problems.push(asProblem(err, { pack: hash }));
      }
    }
  } finally {
    await cache.close();
  }
}

/**
 * Checks each chunk of `pack` (index ordinal `ordinal`) against the id the index gives it. A lazy pack
 * (one ending in the chunk of a huge value) is read in pieces, once for all its chunks, never whole.
 */
async function checkChunks(repo: Repository, index: ChunkIndex, ordinal: number, pack: Pack, report: VerifyReport): Promise<void> {
  const check = (e: number, sha: string): void => {
    const expected = index.chunkAt(ordinal, e);
    if (expected && !repo.chunkId(sha).startsWith(expected)) {
      report.problems.push({ code: 'E_CORRUPT', chunk: expected, pack: pack.hash, message: 'chunk content does not match its hash' });
    }
  };
  if (!pack.lazy) {
    for (let e = 0; e < pack.entries; e++) check(e, pack.chunkHash(e));
    return;
  }
  let e = 0;
  let left = pack.size(0); // every entry holds at least one byte (pack.ts checks its table)
  let digest = createHash('sha256');
  for await (let piece of pack.spanPieces(0, pack.entries)) {
    while (piece.length > 0) {
      const n = Math.min(left, piece.length);
      digest.update(piece.subarray(0, n));
      piece = piece.subarray(n);
      left -= n;
      if (left > 0) continue;
      check(e, digest.digest('hex'));
      if (++e === pack.entries) break;
      digest = createHash('sha256');
      left = pack.size(e);
    }
  }
  if (e !== pack.entries) throw new IntegrityError('E_CORRUPT', `pack ${pack.hash.slice(0, 16)}: decompressed to fewer bytes than the first time`);
}

/**
 * A pack cache that runs `onOpen` on each pack it opens. A pack too large to hold (one ending in the
 * chunk of a huge value) is read from the store, and decompressed, in pieces, as restore reads it.
 */
class CheckingCache extends StreamingPackCache {
  readonly #onOpen: (pack: Pack) => Promise<void>;

  constructor(repo: Repository, order: Iterable<string>, sizes: ReadonlyMap<string, number>, onOpen: (pack: Pack) => Promise<void>) {
    // Each pack once, in this order: dropped once the next is asked for.
    super(repo, { recycle: true, order, sizes, lazyAbove: lazyPackBytes(repo.config.packBytes) });
    this.#onOpen = onOpen;
  }

  override async get(hash: string): Promise<Pack> {
    const pack = await super.get(hash);
    await this.#onOpen(pack);
    return pack;
  }
}

async function drill(repo: Repository, problems: Problem[], options: VerifyOptions = {}): Promise<string | undefined> {
  if (options.drillInto !== undefined) {
    // Into the given database, rolled back at the end: the comparison is the restore's digest check.
    if (resolveLocation(options.drillInto, options.engine).engine !== 'postgres') {
      throw new UsageError('verify: --into is for a PostgreSQL database (postgres://…)', { hint: 'Leave --into out to drill a SQLite snapshot into a temporary file.' });
    }
    try {
      const result = await restore('latest', repo, { into: options.drillInto, rollback: true, ...(options.engine ? { engine: options.engine } : {}), ...(options.jobs ? { jobs: options.jobs } : {}) });
      return result.snapshot;
    } catch (err) {
      if (err instanceof RepositoryIntegrityError) problems.push(...err.problems);
      else problems.push(asProblem(err, {}));
      return undefined;
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'scriptorium-drill-'));
  try {
    const result = await restore('latest', repo, { into: join(dir, 'drill.db'), sameEngineOnly: true });
    return result.snapshot;
  } catch (err) {
    if (err instanceof RepositoryIntegrityError) problems.push(...err.problems);
    else problems.push(asProblem(err, {}));
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function chunkId(index: ChunkIndex, pack: string, entry: number): string {
  const ordinal = index.packOrdinal(pack);
  return (ordinal >= 0 ? index.chunkAt(ordinal, entry) : undefined) ?? `${pack.slice(0, 16)}#${entry}`;
}

function asProblem(err: unknown, where: Omit<Problem, 'code' | 'message'>): Problem {
  if (err instanceof ScriptoriumError) return { ...where, code: err.code, message: err.message };
  throw err;
}
