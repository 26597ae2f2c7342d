/** `backup`: one snapshot of a database into a repository, storing only chunks the repository lacks. */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { close as closeCallback, read as readCallback } from 'node:fs';
import { open as openFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname, tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { AuthError, noSpaceError, ScriptoriumError } from '../core/errors.js';
import type { EventListener } from '../core/events.js';
import { collectAll, collectSoon, GarbageGate } from '../core/memory.js';
import type { TableSchema } from '../core/schema.js';
import { decodeIndex, encodeIndexInto, indexKey, type ChunkIndex } from './chunk-index.js';
import { encodeFingerprintIndex, FINGERPRINT_BYTES, PACKS_PER_INDEX_FILE } from './fingerprint-index.js';
import { ParentIndex } from './parent-index.js';
import { addToSnapshotList } from './snapshot-list.js';
import { BufferPool, ZSTD_DEFAULT_LEVEL } from './compression.js';
import { identityValues, RowChunker, type Chunk } from './chunker.js';
import { appendRange, encodeManifest, snapshotKey, type ChunkRange, type Snapshot, type TableEntry } from './manifest.js';
import { PackWriter, packKey } from './pack.js';
import { nativeChunks, type ChunkBatch } from './native-chunks.js';
import { NativePacker, type PackedFile } from './native-packer.js';
import { gzipPackFile, gzipPackFromFd } from './gzip-pack.js';
import { SealedStore } from './crypto/sealed-store.js';
import { isStale, listLocks, RepositoryLock, type HeldLock } from './locks.js';
import { listObjects, MAX_BYTES } from './objects.js';
import { OperationReporter } from './progress.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from './repository.js';
import { openSource, selectTables, sourceDisplay, subsetSchema, type RowSource } from './source.js';
import type { EngineName } from '../engines/engine.js';

export interface BackupOptions extends OpenOptions {
  /** Labels stored with the snapshot (for listing and `forget --keep-tag`). */
  tags?: string[];
  /** Back up only these tables (default: all). */
  tables?: string[];
  /** Leave these tables out. */
  excludeTables?: string[];
  /** Progress events. */
  onEvent?: EventListener;
  /** The snapshot's time (default: now). */
  time?: Date;
  /** How long to wait for a prune to finish before failing with E_LOCKED (default 60 s). */
  lockWaitMs?: number;
  /** Rows per batch read from the database. */
  batchRows?: number;
  /** The engine of a `source` location that does not say (`postgres` for the PG* environment variables). */
  engine?: EngineName;
  /** PostgreSQL: connections that share the snapshot and read tables at once (default: CPUs, at most 4). */
  jobs?: number;
}

/**
 * Backs up the SQLite database `source` (a path, or an open RowSource) into the repository and
 * returns the new snapshot. Every chunk is durable before the manifest is written, and the manifest
 * is written last, so a crash leaves no visible partial snapshot.
 *
 * @example
 * ```ts
 * const snap = await backup('app.db', '/mnt/nas/backups', { tags: ['nightly'] });
 * console.log(snap.id.slice(0, 8), snap.stats.storedBytes);
 * ```
 */
export async function backup(source: string | RowSource, repository: RepositoryLocation | Repository, options: BackupOptions = {}): Promise<Snapshot> {
  const reporter = new OperationReporter('backup', options.onEvent);
  const sourceName = typeof source === 'string' ? sourceDisplay(source, options.engine) : 'source';
  return reporter.run(() =>
    // A cached config is checked against the snapshot list's record (ParentIndex.open) before any write.
    withRepository(repository, { ...options, cachedConfig: true }, async (repo) => {
      const time = options.time ?? new Date();
      await refusePlaintext(repo, options);
      const lock = await repo.lock('shared', 'backup', options.lockWaitMs ?? 60_000);
      let db: RowSource | undefined;
      try {
        db = typeof source === 'string'
          ? await openSource(source, { ...(options.engine ? { engine: options.engine } : {}), ...(options.tables ? { tables: options.tables } : {}), ...(options.excludeTables ? { excludeTables: options.excludeTables } : {}), ...(options.jobs ? { jobs: options.jobs } : {}), ...(options.onNotice ? { onNotice: options.onNotice } : {}) })
          : source;
        // (A PostgreSQL source has left the excluded tables out already, before it locked the others.)
        const tables = selectTables(db.schema, options.tables, sourceName, db.schema.engine === 'postgres' ? undefined : options.excludeTables);
        // Estimates: the rows are counted as they are read, and count(*) would read every table once more.
        const estimates = tables.map((t) => db!.rowEstimate?.(t) ?? db!.rowCount(t));
        reporter.started({
          source: sourceName, target: repo.location, format: 'repository',
          totalRows: estimates.reduce((a, b) => a + b, 0), tables: tables.length,
        });
        // Format 2 deduplicates against the previous snapshot of this source (flat memory); format 1
        // loads every index file (memory grows with the repository).
        const index = repo.config.version >= 2
          ? await ParentIndex.open(repo, hostname(), sourceName, estimates.reduce((a, b) => a + b, 0))
          : await repo.loadIndex(false, true);
        const writer = new SnapshotWriter(repo, index, reporter, options.onNotice);
        let failed = true;
        try {
          const entries: TableEntry[] = [];
          for (const [i, table] of tables.entries()) {
            const entry = await writer.table(db, table, options.batchRows);
            reporter.rowsTotal = (reporter.rowsTotal ?? 0) + entry.rows - estimates[i]!; // the estimate, made exact
            entries.push(entry);
          }
          const snapshot = await writer.finish(entries, {
            time: time.toISOString(), host: hostname(), tags: options.tags ?? [], source: sourceName,
            schema: subsetSchema(db.schema, tables.map((t) => t.name)),
            ...(db.encoding ? { encoding: db.encoding } : {}),
          });
          failed = false;
          return snapshot;
        } finally {
          await writer.close();
          if (failed) await writer.removeWritten(lock, options.onNotice);
        }
      } finally {
        if (typeof source === 'string') await db?.close();
        await lock.release();
      }
    }),
  );
}

/**
 * Refuses to write a backup into an unencrypted repository when the caller gave a passphrase or an
 * identity: someone who could replace the repository by an unencrypted one must not get plaintext.
 */
async function refusePlaintext(repo: Repository, options: BackupOptions): Promise<void> {
  if (repo.crypto) return;
  if (options.keys?.expectEncrypted) {
    throw new AuthError(`backup: repository ${repo.location} is not encrypted, but a passphrase or identity was given`, {
      hint: 'Refusing to write plaintext where encrypted backups were expected: check that --repo is the encrypted repository (was it replaced?), or unset SCRIPTORIUM_PASSWORD / --password-file for an unencrypted one.',
    });
  }
  // A config that says "not encrypted" beside key objects was edited (its encryption taken out): on a
  // local disk that costs one directory read to see. (On a remote store it would be a LIST every backup.)
  if (repo.store.capabilities.remote === true) return;
  for await (const entry of listObjects(repo.store, 'keys/')) {
    throw new ScriptoriumError('E_CORRUPT', `backup: repository ${repo.location} holds key objects (${entry.key}), but its config says it is not encrypted`, {
      hint: 'Its config was edited or replaced: refusing to write plaintext into an encrypted repository. Restore the config from a copy (or `scriptorium init` a new repository).',
    });
  }
}

const NEWLINE = Buffer.from('\n');
const readFd = promisify(readCallback);
const closeFd = promisify(closeCallback);
/** Packs being stored while the next one fills. */
const IN_FLIGHT = 2;
/**
 * The same, for a remote store uploading the packer's files: an upload waits on the network and the
 * server, not on this process, and holds no pack in memory (it reads the file in small pieces); packs
 * held in memory (a table the JavaScript packer packs) keep IN_FLIGHT. A
 * first backup of 1M rows to moto_server, 4 alternated runs: 1.955 s with 2, 1.89 with 4, 1.885 with 6;
 * a local disk gains nothing (1.32 against 1.31 s).
 */
const REMOTE_FILES_IN_FLIGHT = 4;
/** Sealed packs the native packer may be compressing before a seal waits for the oldest. */
const COMPRESS_AHEAD = 2;
/** Packs per index file written during a backup. */
const INDEX_PACKS = 8;

/** Hex SHA-256 of a small buffer (the one-shot API costs a third of createHash per call). */
function sha256Hex(data: Buffer): string {
  return oneShotHash('sha256', data, 'hex');
}

/** A pack stored: its ordinal and name, its size, and how much of it was a Buffer in the V8 heap. */
interface StoredPack {
  ordinal: number;
  hash: string;
  size: number;
  heapBytes: number;
}

/** Writes one snapshot: chunks into packs, then the index file, then the manifest. */
class SnapshotWriter {
  readonly #repo: Repository;
  readonly #index: ChunkIndex | ParentIndex;
  /** The same index when the repository is of format 2. */
  readonly #v2: ParentIndex | undefined;
  readonly #reporter: OperationReporter;
  readonly #onNotice: ((message: string) => void) | undefined;
  /** Format 2: fingerprints of durable packs not yet in an index file. */
  readonly #fingerprints: Array<{ ordinal: number; hash: string; fps: Buffer }> = [];
  /** Packs in JavaScript, opened on first use (with the native packer a backup may never need it, nor zstd-napi). */
  #packs: PackWriter | undefined;
  /** Packs in C, for tables the extension scans (undefined: not tried yet; null: not available). */
  #native: NativePacker | null | undefined;
  /** A gzip repository: the native packer fills packs of codec none, gzipped here (gzip-pack.ts). */
  #regzip = false;
  /** The encrypted repository's store when the native packer seals the pack files it writes. */
  #sealedFiles: SealedStore | undefined;
  /** Bytes of pack files stored from the V8 heap since the last index file (the native packer's own files are not). */
  #heapPacked = 0;
  /** Ordinals of packs sealed by the native packer and not taken yet, oldest first. */
  readonly #compressing: number[] = [];
  /** Minor collections as buffers become garbage (they live outside the V8 heap, which does not see them pile up). */
  readonly #gate = new GarbageGate();
  /** Per chunk of a native batch: 1 when it goes into the pack (reused). */
  #flags = new Uint8Array(1024);
  /** Ordinals of durable packs not yet listed in an index file. */
  readonly #written: number[] = [];
  /** Keys of the packs and index files this backup created (not ones that were there already), for a failure to remove. */
  readonly #createdPacks: string[] = [];
  readonly #createdIndexFiles: string[] = [];
  /** The manifest is stored: the snapshot exists, and nothing of it may be removed any more. */
  #committed = false;
  readonly #inFlight: Array<Promise<StoredPack>> = [];
  /** Packs stored at once before a new one waits (see {@link REMOTE_FILES_IN_FLIGHT}). */
  #inFlightMax = IN_FLIGHT;
  /** Packs in flight that hold a buffer of their bytes (not uploaded from a file): while any is, IN_FLIGHT holds. */
  #inMemoryInFlight = 0;
  /** The buffer index files are built in (reused). */
  #indexBuffer: Buffer = Buffer.alloc(0);
  /**
   * The whole ids of this backup's chunks, which the index keeps only 8 bytes of: those of the current
   * pack (`#ids`), of sealed packs until their index file is written, and after that the index file.
   */
  #ids: Buffer;
  #idCount = 0;
  readonly #pendingIds = new Map<number, { ids: Buffer; buffer: Buffer }>();
  readonly #indexedIn = new Map<number, string>();
  /**
   * Id buffers: one per pack from its seal until its index file is written, so enough for them all.
   * Fewer, and every index file would drop the rest as garbage that only a full collection frees.
   */
  readonly #idBuffers = new BufferPool(INDEX_PACKS + REMOTE_FILES_IN_FLIGHT + COMPRESS_AHEAD + 2);
  #lastIndexFile: { hash: string; packs: Map<string, Buffer> } | undefined;
  #packOrdinal = -1;
  #chunks = 0;
  #newChunks = 0;
  #newChunkBytes = 0;
  #storedBytes = 0;
  #bytes = 0;

  constructor(repo: Repository, index: ChunkIndex | ParentIndex, reporter: OperationReporter, onNotice?: (message: string) => void) {
    this.#repo = repo;
    this.#index = index;
    this.#v2 = index instanceof ParentIndex ? index : undefined;
    this.#reporter = reporter;
    this.#onNotice = onNotice;
    index.compact(); // this backup's chunks: 8 bytes each in the index, the whole ids here (see #confirm)
    this.#ids = this.#idBuffers.take(this.#idBytesHint());
  }

  /** Bytes of ids a pack usually needs (a pack holds about packBytes / targetBytes chunks). */
  #idBytesHint(): number {
    const { packBytes, chunker } = this.#repo.config;
    return 32 * Math.ceil((1.5 * packBytes) / Math.max(1, chunker.targetBytes));
  }

  /** The JavaScript pack writer, created on first use. */
  async #packWriter(): Promise<PackWriter> {
    if (!this.#packs) {
      const { codec, level } = this.#repo.config.compression;
      this.#packs = await PackWriter.create(codec, level, this.#repo.config.packBytes);
    }
    return this.#packs;
  }

  async table(db: RowSource, table: TableSchema, batchRows?: number): Promise<TableEntry> {
    const digest = createHash('sha256');
    const ranges: ChunkRange[] = [];
    let rows = 0;
    let bytes = 0;
    let chunkCount = 0;
    const take = async (chunk: Chunk): Promise<void> => {
      rows += chunk.rows;
      bytes += chunk.data.length;
      chunkCount++;
      const [pack, entry] = await this.#store(chunk);
      appendRange(ranges, pack, entry);
    };
    let batches = 0;
    await this.#v2?.beginTable(table.name);
    if (db.copyChunks) return this.#copyTable(db.copyChunks(table, this.#repo.config.chunker), table);
    const keyValues = identityValues(table);
    const native = await this.#packer();
    const scan = await nativeChunks(db, table, this.#repo.config.chunker, keyValues, undefined, true, native?.handle);
    if (scan) {
      // The extension read, encoded, cut and (usually) hashed the rows: only slicing is left here. With
      // the native packer, the rows stay in C: only the chunk ids come here.
      if (native && (this.#packs?.entries ?? 0) > 0) await this.#flush(); // a pack holds one writer's entries
      if (!native) await this.#packWriter();
      let sha256: string | undefined;
      const crypto = this.#repo.crypto;
      for (let batch of scan) {
        // An encrypted repository's ids are keyed: the extension's SHA-256 of each chunk, encrypted (one call a batch).
        if (crypto && batch.ids.length > 0) batch = { ...batch, ids: crypto.keyIds(batch.ids) };
        if (batch.data && batch.ids.length === 0) digest.update(batch.data); // no SHA instructions: the table is hashed here
        if (batch.digest) sha256 = batch.digest.toString('hex');
        const size = await this.#storeBatch(batch, ranges);
        rows += batch.rows;
        bytes += size;
        chunkCount += batch.chunks.length / 8;
        if (this.#pendingBytes() >= this.#repo.config.packBytes) await this.#flush();
        this.#reporter.rowsDone += batch.rows;
        this.#reporter.bytesIn += size;
        this.#reporter.progress('rows', table.name);
        // This batch's buffers are garbage from here on: the rows, or with the packer only the ids.
        this.#gate.add(batch.data ? size : batch.chunks.length + batch.ids.length);
        if (++batches % 64 === 0) await yieldToLoop();
      }
      this.#bytes += bytes;
      return { name: table.name, rows, bytes, sha256: sha256 ?? digest.digest('hex'), chunkCount, chunks: ranges };
    }
    if (this.#nativeEntries() > 0) await this.#flush();
    await this.#packWriter();
    const chunker = new RowChunker(this.#repo.config.chunker, keyValues);
    for (const batch of db.batches(table, 'ndjson', batchRows ? { batchRows } : undefined)) {
      if (batch.rows === 0) continue;
      // The digest covers the same bytes as the chunks: every row followed by '\n'.
      digest.update(batch.data);
      digest.update(NEWLINE);
      for (const chunk of chunker.push(batch)) await take(chunk);
      if (this.#pendingBytes() >= this.#repo.config.packBytes) await this.#flush();
      this.#reporter.rowsDone += batch.rows;
      this.#reporter.bytesIn += batch.data.length + 1;
      this.#reporter.progress('rows', table.name);
      this.#gate.add(batch.data.length);
      if (++batches % 16 === 0) await yieldToLoop();
    }
    const last = chunker.finish();
    if (last) await take(last);
    this.#bytes += bytes;
    return { name: table.name, rows, bytes, sha256: digest.digest('hex'), chunkCount, chunks: ranges };
  }

  /**
   * A table whose source cut its chunks (PostgreSQL's COPY text): stored through the JavaScript pack
   * writer, the chunks hashed here, the table digest over their bytes in order.
   */
  async #copyTable(scan: AsyncIterable<ChunkBatch>, table: TableSchema): Promise<TableEntry> {
    const native = await this.#packer();
    if (native?.handsBatches) return this.#copyTableNative(scan, table, native);
    if (this.#nativeEntries() > 0) await this.#flush(); // a pack holds one writer's entries
    await this.#packWriter();
    const digest = createHash('sha256');
    const ranges: ChunkRange[] = [];
    const count = { rows: 0, bytes: 0, chunks: 0, batches: 0 };
    for await (const batch of scan) {
      digest.update(batch.data!);
      await this.#counted(count, table, batch, await this.#storeBatch(batch, ranges));
    }
    this.#bytes += count.bytes;
    return { name: table.name, rows: count.rows, bytes: count.bytes, sha256: digest.digest('hex'), chunkCount: count.chunks, chunks: ranges };
  }

  /**
   * {@link #copyTable} through the native packer: each batch's chunks are hashed (ids and the table
   * digest, with SHA instructions) and handed to the packer in one call, and its thread compresses
   * them, so neither hashing nor compression runs on this thread. The packs, ids and digest are those
   * of the JavaScript path.
   */
  async #copyTableNative(scan: AsyncIterable<ChunkBatch>, table: TableSchema, native: NativePacker): Promise<TableEntry> {
    if ((this.#packs?.entries ?? 0) > 0) await this.#flush(); // a pack holds one writer's entries
    native.batchDigest(); // a table's digest starts here, whatever an earlier failed table left
    const ranges: ChunkRange[] = [];
    const crypto = this.#repo.crypto;
    const count = { rows: 0, bytes: 0, chunks: 0, batches: 0 };
    for await (const batch of scan) {
      let ids = native.handBatch(batch.data!, batch.chunks)!;
      // An encrypted repository's ids are keyed: the extension's SHA-256 of each chunk, encrypted (one call a batch).
      if (crypto && ids.length > 0) ids = crypto.keyIds(ids);
      await this.#counted(count, table, batch, await this.#storeBatch({ data: null, rows: batch.rows, chunks: batch.chunks, ids, digest: null }, ranges));
    }
    this.#bytes += count.bytes;
    return { name: table.name, rows: count.rows, bytes: count.bytes, sha256: native.batchDigest().toString('hex'), chunkCount: count.chunks, chunks: ranges };
  }

  /**
   * A COPY table's batch stored: counts it, flushes a full pack, reports progress, feeds the garbage
   * gate, and lets the event loop run every 64 batches.
   */
  async #counted(count: { rows: number; bytes: number; chunks: number; batches: number }, table: TableSchema, batch: { rows: number; chunks: Uint8Array }, size: number): Promise<void> {
    count.rows += batch.rows;
    count.bytes += size;
    count.chunks += batch.chunks.length / 8;
    if (this.#pendingBytes() >= this.#repo.config.packBytes) await this.#flush();
    this.#reporter.rowsDone += batch.rows;
    this.#reporter.bytesIn += size;
    this.#reporter.progress('rows', table.name);
    this.#gate.add(size);
    if (++count.batches % 64 === 0) await yieldToLoop();
  }

  /** The native packer, opened on first use (null when it is not available here). */
  async #packer(): Promise<NativePacker | null> {
    if (this.#native === undefined) {
      const { codec, level } = this.#repo.config.compression;
      // The extension has no gzip: in a gzip repository its packer fills packs of codec none, and they
      // are gzipped here (a huge one in pieces, from the packer's temporary file), so that a row with a
      // huge value is never held whole, as in a zstd repository (JavaScript's packs hold every chunk:
      // a 200 MB BLOB took 1.9 GB).
      this.#regzip = codec === 'gzip';
      const packerCodec = this.#regzip ? 'none' : codec;
      this.#native = process.env.SCRIPTORIUM_JS_PACKS === '1' ? null : ((await NativePacker.open(packerCodec, level)) ?? null);
      // On a local disk the packer writes the files too: then no pack enters the V8 heap, and no
      // collection is needed to free them. (Not the packs to gzip: they come here to be compressed.)
      const { store } = this.#repo;
      if (this.#native && !this.#regzip && store.tempPrefix && store.putFile) {
        this.#native.writeFiles(store.tempPrefix());
        if (store.capabilities.remote) this.#inFlightMax = REMOTE_FILES_IN_FLIGHT;
      }
      // An encrypted repository's packs too, sealed on the packer's thread where the extension can
      // (same bytes as the SealedStore's): the plain backup's path, and no AES-GCM on the main thread.
      // (Not in a gzip repository: its packs come here to be gzipped, then the store seals them.)
      const sealing = this.#native && !this.#regzip && store instanceof SealedStore ? store.packSealing() : undefined;
      if (sealing && this.#native!.sealFiles(sealing.repositoryId, sealing.secret)) {
        this.#native!.writeFiles(sealing.tempPrefix());
        this.#sealedFiles = store as SealedStore;
        if (store.capabilities.remote) this.#inFlightMax = REMOTE_FILES_IN_FLIGHT;
      }
      // A row with a huge value goes through an unnamed temporary file (never held whole), as restic's
      // temporary packs go to TMPDIR; so does a pack too large to hold that the packer cannot write itself.
      this.#native?.spillTo(tmpdir());
    }
    return this.#native;
  }

  /**
   * Entries in the native packer's pack. A pack holds one writer's entries (a table flushes the other
   * writer's pack first), so at most one of the writers has any.
   */
  #nativeEntries(): number {
    return this.#native?.entries ?? 0;
  }

  /** Entries in the pack being filled, whichever writer fills it. */
  #pendingEntries(): number {
    return this.#nativeEntries() + (this.#packs?.entries ?? 0);
  }

  /** Chunk bytes in the pack being filled. */
  #pendingBytes(): number {
    return (this.#native?.bytes ?? 0) + (this.#packs?.bytes ?? 0);
  }

  /**
   * Stores the chunks of a native batch like {@link #store}, without an object per chunk: new chunks
   * that lie back to back in the batch are appended to the pack in one go. Returns the batch's bytes.
   */
  async #storeBatch(batch: ChunkBatch, ranges: ChunkRange[]): Promise<number> {
    const { chunks } = batch;
    if (batch.data === null) return this.#storePacked(batch, ranges);
    const data = batch.data;
    const hashed = batch.ids.length > 0;
    const count = chunks.length / 8;
    let runStart = 0;
    let runEnd = 0;
    let at = 0;
    for (let i = 0; i < count; i++) {
      const length = chunks.readUInt32LE(8 * i);
      const id = hashed ? batch.ids : this.#chunkId(data.subarray(at, at + length));
      const idAt = hashed ? 32 * i : 0;
      this.#chunks++;
      const wait = this.#v2?.ready();
      if (wait) await wait;
      let found = this.#index.find(id, idAt);
      if (found >= 0 && this.#index.isCandidate(found) && !(await this.#confirm(found, id, idAt))) found = -1;
      if (found >= 0) {
        appendRange(ranges, this.#index.packOf(found), this.#index.entryOf(found));
      } else {
        if (this.#packs!.entries === 0) this.#packOrdinal = this.#index.addPack('');
        const entry = this.#packs!.addEntry(length, chunks.readUInt32LE(8 * i + 4));
        this.#addId(id, idAt);
        this.#newChunks++;
        this.#newChunkBytes += length;
        appendRange(ranges, this.#packOrdinal, entry);
        if (runEnd !== at) {
          if (runEnd > runStart) this.#packs!.append(data, runStart, runEnd);
          runStart = at;
        }
        runEnd = at + length;
      }
      at += length;
    }
    if (runEnd > runStart) this.#packs!.append(data, runStart, runEnd);
    return at;
  }

  /**
   * {@link #storeBatch} for a batch the native packer holds: the chunks the repository lacks are
   * flagged for it, and only their ids are kept here. This loop runs for every chunk of a backup
   * (372,000 at 1M demo rows), on the thread the whole backup waits for: hence the byte arithmetic
   * instead of Buffer methods, and the ids of new chunks copied a run at a time.
   */
  async #storePacked(batch: ChunkBatch, ranges: ChunkRange[]): Promise<number> {
    const { chunks, ids } = batch;
    const native = this.#native!;
    const index = this.#index;
    const count = chunks.length >> 3;
    if (this.#flags.length < count) this.#flags = new Uint8Array(2 * count);
    const flags = this.#flags.subarray(0, count).fill(0);
    let at = 0;
    let run = -1; // first chunk of the run of new chunks whose ids are still to be copied
    for (let i = 0; i < count; i++) {
      const o = i << 3;
      const length = (chunks[o]! | (chunks[o + 1]! << 8) | (chunks[o + 2]! << 16)) + chunks[o + 3]! * 0x1000000;
      at += length;
      const idAt = i << 5;
      const wait = this.#v2?.ready();
      if (wait) await wait;
      let found = index.find(ids, idAt);
      if (found >= 0 && index.isCandidate(found)) {
        if (run >= 0) run = this.#copyIds(ids, run, i);
        if (!(await this.#confirm(found, ids, idAt))) found = -1;
      }
      if (found >= 0) {
        if (run >= 0) run = this.#copyIds(ids, run, i);
        appendRange(ranges, index.packOf(found), index.entryOf(found));
        continue;
      }
      if (native.entries === 0) {
        if (run >= 0) run = this.#copyIds(ids, run, i);
        this.#packOrdinal = index.addPack('');
      }
      index.add(ids, this.#packOrdinal, idAt);
      if (run < 0) run = i;
      appendRange(ranges, this.#packOrdinal, native.addEntry(length));
      this.#newChunkBytes += length;
      this.#newChunks++;
      flags[i] = 1;
    }
    if (run >= 0) this.#copyIds(ids, run, count);
    this.#chunks += count;
    native.add(flags);
    return at;
  }

  /** The id of a chunk the extension did not hash: its SHA-256, keyed in an encrypted repository. */
  #chunkId(data: Buffer): Buffer {
    const sha = Buffer.from(sha256Hex(data), 'hex');
    return this.#repo.crypto ? this.#repo.crypto.keyIds(sha) : sha;
  }

  /** Appends the ids of chunks `first` to `end - 1` of `ids` to the current pack's; returns -1 (no run). */
  #copyIds(ids: Buffer, first: number, end: number): number {
    const bytes = 32 * (end - first);
    if (32 * this.#idCount + bytes > this.#ids.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.#ids.length, 32 * this.#idCount + bytes));
      this.#ids.copy(grown, 0, 0, 32 * this.#idCount);
      this.#ids = grown;
    }
    ids.copy(this.#ids, 32 * this.#idCount, 32 * first, 32 * end);
    this.#idCount += end - first;
    return -1;
  }

  /** Returns (pack ordinal, entry) of the chunk, adding it to the current pack when the repository lacks it. */
  async #store(chunk: Chunk): Promise<[number, number]> {
    this.#chunks++;
    const hash = this.#chunkId(chunk.data);
    const wait = this.#v2?.ready();
    if (wait) await wait;
    let found = this.#index.find(hash);
    if (found >= 0 && this.#index.isCandidate(found) && !(await this.#confirm(found, hash, 0))) found = -1;
    if (found >= 0) return [this.#index.packOf(found), this.#index.entryOf(found)];
    if (this.#pendingEntries() === 0) this.#packOrdinal = this.#index.addPack('');
    const entry = this.#packs!.addEntry(chunk.data.length, chunk.rows);
    this.#packs!.append(chunk.data, 0, chunk.data.length);
    const ordinal = this.#packOrdinal;
    this.#addId(hash, 0);
    this.#newChunks++;
    this.#newChunkBytes += chunk.data.length;
    return [ordinal, entry];
  }

  /**
   * Whether the index entry `found`, a candidate (an entry of this backup, matched on 8 bytes), is the
   * chunk whose id is the 32 bytes of `id` at `idAt`. When it is not (two ids sharing 64 bits), the
   * chunk counts as new and is stored again.
   */
  async #confirm(found: number, id: Buffer, idAt: number): Promise<boolean> {
    const ids = await this.#idsOf(this.#index.packOf(found));
    const at = 32 * this.#index.entryOf(found);
    return ids !== undefined && at + 32 <= ids.length && ids.compare(id, idAt, idAt + 32, at, at + 32) === 0;
  }

  /** Records the id of the entry just added to the current pack, in the index and here. */
  #addId(id: Buffer, idAt: number): void {
    this.#index.add(id, this.#packOrdinal, idAt);
    if (32 * (this.#idCount + 1) > this.#ids.length) {
      const grown = Buffer.allocUnsafe(2 * this.#ids.length);
      this.#ids.copy(grown, 0, 0, 32 * this.#idCount);
      this.#ids = grown;
    }
    id.copy(this.#ids, 32 * this.#idCount++, idAt, idAt + 32);
  }

  /** The ids of pack ordinal `pack`'s entries, if it is a pack of this backup. */
  async #idsOf(pack: number): Promise<Buffer | undefined> {
    if (pack === this.#packOrdinal && this.#pendingEntries() > 0) return this.#ids.subarray(0, 32 * this.#idCount);
    const pending = this.#pendingIds.get(pack);
    if (pending) return pending.ids;
    const file = this.#indexedIn.get(pack);
    if (file === undefined) return undefined;
    if (this.#lastIndexFile?.hash !== file) {
      const packs = await decodeIndex(file, await this.#repo.store.get(indexKey(file), { maxBytes: MAX_BYTES.index }));
      this.#lastIndexFile = { hash: file, packs: new Map(packs.map((p) => [p.hash, p.chunkIds])) };
    }
    return this.#lastIndexFile.packs.get(this.#index.packs[pack]);
  }

  /**
   * Seals the current pack and hands it to the store. Up to IN_FLIGHT packs (see REMOTE_FILES_IN_FLIGHT) are being stored while the
   * caller goes on reading; their ordinals are named in order as they complete.
   */
  async #flush(): Promise<void> {
    if (this.#pendingEntries() === 0) return;
    const ordinal = this.#packOrdinal;
    const native = this.#nativeEntries() > 0;
    const sealed = native ? undefined : await this.#packs!.seal();
    if (native) {
      this.#native!.seal();
      this.#compressing.push(ordinal);
    }
    this.#pendingIds.set(ordinal, { ids: this.#ids.subarray(0, 32 * this.#idCount), buffer: this.#ids });
    this.#ids = this.#idBuffers.take(this.#idBytesHint());
    this.#idCount = 0;
    if (sealed) this.#put(ordinal, sealed.hash, sealed.file, () => sealed.release());
    // The packer compresses on its own thread: take what it has finished, and wait only when it falls behind.
    this.#takeCompressed(COMPRESS_AHEAD);
    const most = this.#inMemoryInFlight > 0 ? IN_FLIGHT : this.#inFlightMax;
    if (this.#inFlight.length > most) await this.#drain(most - 1);
  }

  /** Hands the native packer's compressed packs to the store, waiting while more than `ahead` are not done. */
  #takeCompressed(ahead: number): void {
    while (this.#compressing.length > 0) {
      const packed = this.#native!.take(this.#compressing.length > ahead);
      if (!packed) return;
      if (this.#regzip) this.#putGzipped(this.#compressing.shift()!, packed);
      else if ('path' in packed) this.#putFile(this.#compressing.shift()!, packed.hash, packed.path, packed.size);
      else if ('fd' in packed) this.#putFd(this.#compressing.shift()!, packed.hash, packed.fd, packed.size);
      else this.#put(this.#compressing.shift()!, packed.hash, packed.file);
    }
  }

  /** Starts storing the sealed pack `ordinal`; {@link #drain} waits for it. */
  #put(ordinal: number, hash: string, file: Buffer, release?: () => void): void {
    const stored = (async () => {
      try {
        await this.#putCreated(packKey(hash), () => this.#repo.store.put(packKey(hash), file), file);
      } finally {
        release?.(); // the store has written (or given up on) the file: its buffer can be reused
      }
      return { ordinal, hash, size: file.length, heapBytes: file.length };
    })();
    this.#track(stored);
  }

  /** {@link #put} for a pack file the native packer wrote and synced at `path` (a temporary file of the store). */
  #putFile(ordinal: number, hash: string, path: string, size: number): void {
    const key = packKey(hash);
    const { store } = this.#repo;
    // One request on a store that says whether it created the object (S3), where has + putFile take two.
    const sealed = this.#sealedFiles;
    const stored = sealed
      ? this.#putCreated(key, () => sealed.putSealedFile(key, path))
      : store.putFileNew
        ? store.putFileNew(key, path, hash).then((created) => { if (created) this.#createdPacks.push(key); })
        : this.#putCreated(key, () => store.putFile!(key, path));
    this.#track(stored.then(() => ({ ordinal, hash, size, heapBytes: 0 })), true);
  }

  /**
   * {@link #put} for a pack too large to hold that the packer left in an unnamed temporary file, open
   * as `fd` (closed here): streamed into the store where it can (an encrypted repository seals it frame
   * by frame), read whole and put otherwise.
   */
  #putFd(ordinal: number, hash: string, fd: number, size: number): void {
    const key = packKey(hash);
    const { store } = this.#repo;
    const stored = (async () => {
      try {
        if (store.putFromFd) {
          await this.#putCreated(key, () => store.putFromFd!(key, fd, size));
        } else {
          const file = Buffer.allocUnsafe(size);
          for (let at = 0; at < size;) {
            const { bytesRead } = await readFd(fd, file, at, Math.min(1 << 30, size - at), at);
            if (bytesRead === 0) throw new Error(`put pack ${hash.slice(0, 8)}: its temporary file ended after ${at} of its ${size} bytes`);
            at += bytesRead;
          }
          await this.#putCreated(key, () => store.put(key, file), file);
        }
      } finally {
        await closeFd(fd).catch(() => undefined);
      }
      return { ordinal, hash, size, heapBytes: 0 };
    })();
    this.#track(stored);
  }

  /**
   * {@link #put} for a pack of codec none from the native packer of a gzip repository: gzipped first
   * (off the main thread, in node:zlib's pool), whole when it came in memory, else in pieces from its
   * temporary file into a file of its own (see {@link #gzipFromFd}).
   */
  #putGzipped(ordinal: number, packed: PackedFile): void {
    const { level } = this.#repo.config.compression;
    const { store } = this.#repo;
    const stored = (async (): Promise<StoredPack> => {
      if ('file' in packed) {
        const { file, hash } = await gzipPackFile(packed.file, level);
        await this.#putCreated(packKey(hash), () => store.put(packKey(hash), file), file);
        return { ordinal, hash, size: file.length, heapBytes: file.length + packed.file.length };
      }
      if (!('fd' in packed)) throw new Error('backup: the packer of a gzip repository wrote a pack file itself');
      try {
        return await this.#gzipFromFd(ordinal, packed.fd, packed.size);
      } finally {
        await closeFd(packed.fd).catch(() => undefined);
      }
    })();
    this.#track(stored);
  }

  /**
   * A huge pack of codec none (the packer's unnamed temporary file `fd`, `size` bytes) gzipped in
   * pieces and stored without ever being held: into a temporary file of the store, moved into place
   * (a local disk, S3), or into an unnamed temporary file in TMPDIR that the store seals and writes in
   * pieces (an encrypted repository); read whole and put only on a store that can neither.
   */
  async #gzipFromFd(ordinal: number, fd: number, size: number): Promise<StoredPack> {
    const { level } = this.#repo.config.compression;
    const { store } = this.#repo;
    if (store.tempPrefix && (store.putFileNew || store.putFile)) {
      const path = `${store.tempPrefix()}g`;
      let out;
      let packed: { hash: string; size: number };
      try {
        out = await openFile(path, 'wx', 0o600);
        try {
          packed = await gzipPackFromFd(fd, size, out, level);
        } finally {
          await out.close();
        }
      } catch (err) {
        await unlink(path).catch(() => undefined);
        throw noSpaceError(err, `repository ${this.#repo.location}: put pack`) ?? err;
      }
      const key = packKey(packed.hash);
      if (store.putFileNew) {
        if (await store.putFileNew(key, path, packed.hash)) this.#createdPacks.push(key);
      } else {
        await this.#putCreated(key, () => store.putFile!(key, path));
      }
      return { ordinal, hash: packed.hash, size: packed.size, heapBytes: 0 };
    }
    // Unnamed: removed at once, so that nothing is left behind a killed process.
    const path = join(tmpdir(), `.scriptorium-gzip-${process.pid}-${Math.random().toString(36).slice(2)}`);
    let out;
    try {
      out = await openFile(path, 'wx+', 0o600);
    } catch (err) {
      throw noSpaceError(err, `backup: temporary file in ${tmpdir()}`) ?? err;
    }
    try {
      await unlink(path);
      let packed: { hash: string; size: number };
      try {
        packed = await gzipPackFromFd(fd, size, out, level);
      } catch (err) {
        throw noSpaceError(err, `backup: temporary file in ${tmpdir()}`) ?? err;
      }
      const key = packKey(packed.hash);
      if (store.putFromFd) {
        await this.#putCreated(key, () => store.putFromFd!(key, out.fd, packed.size));
      } else {
        const file = Buffer.allocUnsafe(packed.size);
        for (let at = 0; at < packed.size;) {
          const { bytesRead } = await out.read(file, at, Math.min(1 << 30, packed.size - at), at);
          if (bytesRead === 0) throw new Error(`put pack ${packed.hash.slice(0, 8)}: its temporary file ended after ${at} of its ${packed.size} bytes`);
          at += bytesRead;
        }
        await this.#putCreated(key, () => store.put(key, file), file);
      }
      return { ordinal, hash: packed.hash, size: packed.size, heapBytes: 0 };
    } finally {
      await out.close();
    }
  }

  /**
   * Runs `put` of pack `key`, remembering the key when the pack did not exist before: only such a pack
   * is this backup's to remove if it fails (an identical pack already there may be some snapshot's).
   */
  async #putCreated(key: string, put: () => Promise<void>, data?: Uint8Array, created = this.#createdPacks): Promise<void> {
    const { store } = this.#repo;
    if (data && store.putNew) {
      // One request on a store that can put conditionally (S3), where has + put take two.
      if (await store.putNew(key, data)) created.push(key);
      return;
    }
    const existed = await this.#repo.store.has(key).catch(() => true);
    await put();
    if (!existed) created.push(key);
  }

  /**
   * After a failure (and {@link close}): removes the index files and the packs this backup created, so
   * that a failed backup (a full disk most of all) leaves nothing behind. Index files go first, then
   * the locks are listed: a backup that loaded one of those index files before it was removed holds a
   * lock that is listed then, and while any other operation holds a lock the packs stay (the next prune
   * removes them). Best effort: a failure here never hides the backup's own error.
   */
  async removeWritten(own: HeldLock, onNotice?: (message: string) => void): Promise<void> {
    const { store } = this.#repo;
    if (this.#committed) return;
    try {
      for (const key of this.#createdIndexFiles.splice(0)) await store.delete(key);
      if (this.#createdPacks.length === 0) return;
      const others = (await listLocks(store)).filter((l) => !(own instanceof RepositoryLock && l.key === own.key) && !isStale(l));
      if (others.length > 0) {
        onNotice?.(`left ${this.#createdPacks.length} pack(s) of the failed backup for prune: ${others.length} other operation(s) hold a lock`);
        return;
      }
      for (const key of this.#createdPacks.splice(0)) await store.delete(key);
    } catch (err) {
      onNotice?.(`could not remove all packs of the failed backup (${err instanceof Error ? err.message : String(err)}): prune removes them`);
    }
  }

  /** Adds a pack being stored to those in flight; {@link #drain} awaits it. `fromFile`: it holds no buffer of the pack. */
  #track(stored: Promise<StoredPack>, fromFile = false): void {
    stored.catch(() => undefined); // keep an early failure from going unhandled until #drain awaits it
    if (!fromFile) {
      this.#inMemoryInFlight++;
      void stored.finally(() => this.#inMemoryInFlight--).catch(() => undefined);
    }
    this.#inFlight.push(stored);
  }

  /** Waits for the oldest packs in flight, leaving at most `keep` of them. */
  async #drain(keep: number): Promise<void> {
    while (this.#inFlight.length > keep) {
      const { ordinal, hash, size, heapBytes } = await this.#inFlight.shift()!;
      this.#gate.add(heapBytes); // the pack file, stored (when it was in the heap at all)
      this.#heapPacked += heapBytes;
      this.#index.namePack(ordinal, hash);
      this.#storedBytes += size;
      this.#reporter.bytesOut += size;
      if (this.#v2) {
        // Format 2 keeps 8 bytes a chunk until the index file: the whole ids go back at once.
        const pending = this.#pendingIds.get(ordinal)!;
        const fps = Buffer.allocUnsafe((pending.ids.length / 32) * FINGERPRINT_BYTES);
        // Byte by byte: a Buffer.copy per chunk cost ~0.3 µs each (339k chunks at 1M rows).
        const ids = pending.ids;
        for (let i = 0, o = 0; i < ids.length; i += 32, o += FINGERPRINT_BYTES) {
          for (let b = 0; b < FINGERPRINT_BYTES; b++) fps[o + b] = ids[i + b]!;
        }
        this.#idBuffers.give(pending.buffer);
        this.#pendingIds.delete(ordinal);
        this.#fingerprints.push({ ordinal, hash, fps });
        if (this.#fingerprints.length >= PACKS_PER_INDEX_FILE) await this.#writeFingerprints();
        continue;
      }
      this.#written.push(ordinal);
      if (this.#written.length >= INDEX_PACKS) await this.#writeIndex();
    }
  }

  /** Format 2: stores an index file of the fingerprints of the packs made durable since the last one. */
  async #writeFingerprints(): Promise<void> {
    if (this.#fingerprints.length === 0) return;
    const packs = this.#fingerprints.splice(0);
    const { file, hash } = encodeFingerprintIndex(packs.map((p) => ({ hash: p.hash, chunkIds: p.fps, idBytes: FINGERPRINT_BYTES })));
    await this.#putCreated(indexKey(hash), () => this.#repo.store.put(indexKey(hash), file), file, this.#createdIndexFiles);
    for (const p of packs) this.#v2!.setHint(p.ordinal, hash);
    // The file and the packs' fingerprints are garbage now, outside the V8 heap, which does not see them pile up.
    if (this.#native) collectSoon();
    else collectAll();
    this.#heapPacked = 0;
    this.#storedBytes += file.length;
    this.#reporter.bytesOut += file.length;
  }

  /**
   * Stores an index file for the packs written since the last one (all durable by now). Writing them
   * as the backup goes keeps memory flat, and lets a backup that follows a crashed one reuse its packs.
   */
  async #writeIndex(): Promise<void> {
    if (this.#written.length === 0) return;
    const ordinals = this.#written.splice(0);
    const packs = ordinals.map((o) => ({ hash: this.#index.packs[o], chunkIds: this.#pendingIds.get(o)!.ids }));
    const { file, hash, buffer } = encodeIndexInto(packs, this.#indexBuffer);
    this.#indexBuffer = buffer;
    const { store } = this.#repo;
    if (store.putNew) {
      if (await store.putNew(indexKey(hash), file)) this.#createdIndexFiles.push(indexKey(hash));
    } else {
      const existed = await store.has(indexKey(hash)).catch(() => true);
      await store.put(indexKey(hash), file);
      if (!existed) this.#createdIndexFiles.push(indexKey(hash));
    }
    for (const o of ordinals) {
      this.#indexedIn.set(o, hash);
      this.#idBuffers.give(this.#pendingIds.get(o)!.buffer);
      this.#pendingIds.delete(o);
    }
    // Every few packs: V8 would let its heap grow for the whole backup (measured: 4 MiB), and the pack
    // files stored, which outlive minor collections while they are written, would pile up outside it.
    // With the native packer the readers wait whenever this thread stops: collect beside it instead.
    // When the packer wrote the files itself, there are none to free (the batches' ids die young).
    if (this.#heapPacked > 0) {
      if (this.#native) collectSoon();
      else collectAll();
      this.#heapPacked = 0;
    }
    this.#storedBytes += file.length;
    this.#reporter.bytesOut += file.length;
  }

  /** Waits for packs still in flight (their failures were reported already), and closes the native packer. */
  async close(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
    this.#native?.close();
  }

  /** The manifest's `index` and `packIndex` for its `packs` (format 2). */
  #indexHints(packs: string[]): { index: string[]; packIndex: number[] } {
    const index: string[] = [];
    const at = new Map<string, number>();
    const packIndex = packs.map((hash) => {
      const file = this.#v2!.hintOf(this.#v2!.packOrdinal(hash));
      if (file === undefined) return -1;
      let i = at.get(file);
      if (i === undefined) {
        i = index.push(file) - 1;
        at.set(file, i);
      }
      return i;
    });
    return { index, packIndex };
  }

  async finish(tables: TableEntry[], meta: Pick<Snapshot, 'time' | 'host' | 'tags' | 'source' | 'schema'> & Partial<Pick<Snapshot, 'encoding'>>): Promise<Snapshot> {
    await this.#flush();
    this.#takeCompressed(0);
    await this.#drain(0);
    await this.#writeIndex();
    await this.#writeFingerprints();
    // Ranges point at index-wide pack ordinals; the manifest lists only its own packs.
    const local = new Map<number, number>();
    const packs: string[] = [];
    for (const table of tables) {
      for (const range of table.chunks) {
        let i = local.get(range[0]);
        if (i === undefined) {
          i = packs.push(this.#index.packs[range[0]]) - 1;
          local.set(range[0], i);
        }
        range[0] = i;
      }
    }
    const rows = tables.reduce((a, t) => a + t.rows, 0);
    // Format 2: where each pack's fingerprints are, for the next backup (which deduplicates against this one).
    const hints = this.#v2 ? this.#indexHints(packs) : undefined;
    const manifest = {
      version: (this.#v2 ? 2 : 1) as 1 | 2, repository: this.#repo.config.id, encoding: 'ndjson' as Snapshot['encoding'], ...meta, packs, tables,
      stats: {
        rows, bytes: this.#bytes, chunks: this.#chunks, newChunks: this.#newChunks, newChunkBytes: this.#newChunkBytes,
        storedBytes: this.#storedBytes, durationMs: this.#reporter.elapsedMs,
      },
      ...hints,
    };
    const { codec, level } = this.#repo.config.compression;
    const native = this.#native;
    const zstd = native ? (body: Buffer) => native.compress(body, level ?? ZSTD_DEFAULT_LEVEL) : undefined;
    const { file, hash } = await encodeManifest(manifest, codec, level, zstd);
    try {
      await this.#repo.store.put(snapshotKey(hash), file);
    } catch (err) {
      // A put can fail after its rename (syncing the folder): then the snapshot exists, and keeps its packs.
      if (await this.#repo.store.has(snapshotKey(hash)).catch(() => true)) this.#committed = true;
      throw err;
    }
    this.#committed = true;
    this.#reporter.bytesOut += file.length;
    this.#reporter.progress('done', undefined, true);
    const snapshot = { ...manifest, id: hash, manifestBytes: file.length };
    if (this.#v2) {
      try {
        await addToSnapshotList(this.#repo.store, snapshot, this.#v2.snapshotList, this.#repo.configHash);
      } catch (err) {
        // The snapshot exists; the list is a cache (the next backup lists snapshots/ instead).
        if (!(err instanceof Error && 'code' in err)) throw err;
        this.#onNotice?.(`snapshot ${hash.slice(0, 8)} saved, but the snapshot list could not be updated (${err.message}): the next backup looks for its parent the slow way`);
      }
    }
    this.#reporter.completed({
      snapshot: hash, tables: tables.length, chunks: this.#chunks, newChunks: this.#newChunks,
      storedBytes: this.#storedBytes + file.length,
    });
    return snapshot;
  }
}
