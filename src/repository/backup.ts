/** `backup`: one snapshot of a database into a repository, storing only chunks the repository lacks. */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { EventListener } from '../core/events.js';
import { GarbageGate } from '../core/memory.js';
import type { TableSchema } from '../core/schema.js';
import { encodeIndex, indexKey, type ChunkIndex, type IndexedPack } from './chunk-index.js';
import { identityValues, RowChunker, type Chunk } from './chunker.js';
import { appendRange, encodeManifest, snapshotKey, type ChunkRange, type Snapshot, type TableEntry } from './manifest.js';
import { PackBuilder, packKey } from './pack.js';
import { PackSealer } from './pack-sealer.js';
import { nativeChunks, type ChunkBatch } from './native-chunks.js';
import { OperationReporter } from './progress.js';
import { withRepository, type OpenOptions, type Repository, type RepositoryLocation } from './repository.js';
import { openSqliteSource, selectTables, subsetSchema, type RowSource } from './source.js';

export interface BackupOptions extends OpenOptions {
  /** Labels stored with the snapshot (for listing and `forget --keep-tag`). */
  tags?: string[];
  /** Back up only these tables (default: all). */
  tables?: string[];
  /** Progress events. */
  onEvent?: EventListener;
  /** The snapshot's time (default: now). */
  time?: Date;
  /** How long to wait for a prune to finish before failing with E_LOCKED (default 60 s). */
  lockWaitMs?: number;
  /** Rows per batch read from the database. */
  batchRows?: number;
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
  const sourceName = typeof source === 'string' ? resolve(source) : 'source';
  return reporter.run(() =>
    withRepository(repository, options, async (repo) => {
      const time = options.time ?? new Date();
      const lock = await repo.lock('shared', 'backup', options.lockWaitMs ?? 60_000);
      let db: RowSource | undefined;
      try {
        db = typeof source === 'string' ? await openSqliteSource(source) : source;
        const tables = selectTables(db.schema, options.tables, sourceName);
        const rowCounts = tables.map((t) => db!.rowCount(t));
        reporter.started({
          source: sourceName, target: repo.location, format: 'repository',
          totalRows: rowCounts.reduce((a, b) => a + b, 0), tables: tables.length,
        });
        const writer = new SnapshotWriter(repo, await repo.loadIndex(false, true), reporter);
        try {
          const entries: TableEntry[] = [];
          for (const table of tables) entries.push(await writer.table(db, table, options.batchRows));
          return await writer.finish(entries, {
            time: time.toISOString(), host: hostname(), tags: options.tags ?? [], source: sourceName,
            schema: subsetSchema(db.schema, tables.map((t) => t.name)),
          });
        } finally {
          await writer.close();
        }
      } finally {
        if (typeof source === 'string') db?.close();
        await lock.release();
      }
    }),
  );
}

const NEWLINE = Buffer.from('\n');
/** Packs being compressed or written while the next one fills. */
const IN_FLIGHT = 2;
/** Packs per index file written during a backup. */
const INDEX_PACKS = 8;

/** Hex SHA-256 of a small buffer (the one-shot API costs a third of createHash per call). */
function sha256Hex(data: Buffer): string {
  return oneShotHash('sha256', data, 'hex');
}

/** Writes one snapshot: chunks into packs, then the index file, then the manifest. */
class SnapshotWriter {
  readonly #repo: Repository;
  readonly #index: ChunkIndex;
  readonly #reporter: OperationReporter;
  readonly #builder: PackBuilder;
  readonly #written: IndexedPack[] = [];
  readonly #inFlight: Array<Promise<{ ordinal: number; hash: string; chunkIds: Buffer; size: number }>> = [];
  readonly #sealer: PackSealer;
  #packOrdinal = -1;
  #chunks = 0;
  #newChunks = 0;
  #newChunkBytes = 0;
  #storedBytes = 0;
  #bytes = 0;

  constructor(repo: Repository, index: ChunkIndex, reporter: OperationReporter) {
    this.#repo = repo;
    this.#index = index;
    this.#reporter = reporter;
    this.#builder = new PackBuilder(repo.config.packBytes + (256 << 10));
    this.#sealer = new PackSealer(repo.config.compression.codec, repo.config.compression.level);
  }

  async table(db: RowSource, table: TableSchema, batchRows?: number): Promise<TableEntry> {
    const digest = createHash('sha256');
    const ranges: ChunkRange[] = [];
    let rows = 0;
    let bytes = 0;
    let chunkCount = 0;
    const take = (chunk: Chunk): void => {
      rows += chunk.rows;
      bytes += chunk.data.length;
      chunkCount++;
      const [pack, entry] = this.#store(chunk);
      appendRange(ranges, pack, entry);
    };
    let batches = 0;
    const keyValues = identityValues(table);
    const scan = await nativeChunks(db, table, this.#repo.config.chunker, keyValues);
    if (scan) {
      // The extension read, encoded, cut and (usually) hashed the rows: only slicing is left here.
      const gate = new GarbageGate();
      for (const batch of scan) {
        digest.update(batch.data);
        this.#storeBatch(batch, ranges);
        rows += batch.rows;
        bytes += batch.data.length;
        chunkCount += batch.chunks.length / 8;
        if (this.#builder.bytes >= this.#repo.config.packBytes) await this.#flush();
        this.#reporter.rowsDone += batch.rows;
        this.#reporter.bytesIn += batch.data.length;
        this.#reporter.progress('rows', table.name);
        gate.add(batch.data.length); // this batch's buffers are garbage from here on
        if (++batches % 64 === 0) await yieldToLoop();
      }
      this.#bytes += bytes;
      return { name: table.name, rows, bytes, sha256: digest.digest('hex'), chunkCount, chunks: ranges };
    }
    const chunker = new RowChunker(this.#repo.config.chunker, keyValues);
    for (const batch of db.batches(table, 'ndjson', batchRows ? { batchRows } : undefined)) {
      if (batch.rows === 0) continue;
      // The digest covers the same bytes as the chunks: every row followed by '\n'.
      digest.update(batch.data);
      digest.update(NEWLINE);
      for (const chunk of chunker.push(batch)) take(chunk);
      if (this.#builder.bytes >= this.#repo.config.packBytes) await this.#flush();
      this.#reporter.rowsDone += batch.rows;
      this.#reporter.bytesIn += batch.data.length + 1;
      this.#reporter.progress('rows', table.name);
      if (++batches % 16 === 0) await yieldToLoop();
    }
    const last = chunker.finish();
    if (last) take(last);
    this.#bytes += bytes;
    return { name: table.name, rows, bytes, sha256: digest.digest('hex'), chunkCount, chunks: ranges };
  }

  /**
   * Stores the chunks of a native batch like {@link #store}, without an object per chunk: new chunks
   * that lie back to back in the batch are copied into the pack in one go.
   */
  #storeBatch(batch: ChunkBatch, ranges: ChunkRange[]): void {
    const { data, chunks } = batch;
    const hashed = batch.ids.length > 0;
    const count = chunks.length / 8;
    let runStart = 0;
    let runEnd = 0;
    for (let i = 0, at = 0; i < count; i++) {
      const length = chunks.readUInt32LE(8 * i);
      const id = hashed ? batch.ids : Buffer.from(sha256Hex(data.subarray(at, at + length)), 'hex');
      const idAt = hashed ? 32 * i : 0;
      this.#chunks++;
      const found = this.#index.find(id, idAt);
      if (found >= 0) {
        appendRange(ranges, this.#index.packOf(found), this.#index.entryOf(found));
      } else {
        if (this.#builder.entries === 0) this.#packOrdinal = this.#index.addPack('');
        const entry = this.#builder.addEntry(length, chunks.readUInt32LE(8 * i + 4), id, idAt);
        this.#index.add(id, this.#packOrdinal, idAt);
        this.#newChunks++;
        this.#newChunkBytes += length;
        appendRange(ranges, this.#packOrdinal, entry);
        if (runEnd !== at) {
          if (runEnd > runStart) this.#builder.append(data, runStart, runEnd);
          runStart = at;
        }
        runEnd = at + length;
      }
      at += length;
    }
    if (runEnd > runStart) this.#builder.append(data, runStart, runEnd);
  }

  /** Returns (pack ordinal, entry) of the chunk, adding it to the current pack when the repository lacks it. */
  #store(chunk: Chunk): [number, number] {
    this.#chunks++;
    const hash = Buffer.from(sha256Hex(chunk.data), 'hex');
    const found = this.#index.find(hash);
    if (found >= 0) return [this.#index.packOf(found), this.#index.entryOf(found)];
    if (this.#builder.entries === 0) this.#packOrdinal = this.#index.addPack('');
    const entry = this.#builder.add(chunk, hash);
    const ordinal = this.#packOrdinal;
    this.#index.add(hash, ordinal);
    this.#newChunks++;
    this.#newChunkBytes += chunk.data.length;
    return [ordinal, entry];
  }

  /**
   * Hands the current pack to the sealer and, once sealed, to the store. Up to IN_FLIGHT packs are
   * in flight while the caller goes on reading; their ordinals are named in order as they complete.
   */
  async #flush(): Promise<void> {
    if (this.#builder.entries === 0) return;
    const ordinal = this.#packOrdinal;
    const { body, chunkIds } = this.#builder.take();
    const stored = this.#sealer.seal(body).then(async ({ file, hash, body: memory }) => {
      if (memory) this.#builder.recycle(memory);
      await this.#repo.store.put(packKey(hash), file);
      return { ordinal, hash, chunkIds, size: file.length };
    });
    stored.catch(() => undefined); // awaited in #drain; keep an early failure from going unhandled
    this.#inFlight.push(stored);
    if (this.#inFlight.length > IN_FLIGHT) await this.#drain(IN_FLIGHT - 1);
  }

  /** Waits for the oldest packs in flight, leaving at most `keep` of them. */
  async #drain(keep: number): Promise<void> {
    while (this.#inFlight.length > keep) {
      const { ordinal, hash, chunkIds, size } = await this.#inFlight.shift()!;
      this.#index.namePack(ordinal, hash);
      this.#written.push({ hash, chunkIds });
      this.#storedBytes += size;
      this.#reporter.bytesOut += size;
      if (this.#written.length >= INDEX_PACKS) await this.#writeIndex();
    }
  }

  /**
   * Stores an index file for the packs written since the last one (all durable by now). Writing them
   * as the backup goes keeps memory flat, and lets a backup that follows a crashed one reuse its packs.
   */
  async #writeIndex(): Promise<void> {
    if (this.#written.length === 0) return;
    const index = await encodeIndex(this.#written.splice(0));
    await this.#repo.store.put(indexKey(index.hash), index.file);
    this.#storedBytes += index.file.length;
    this.#reporter.bytesOut += index.file.length;
  }

  /** Stops the sealer; waits for packs still in flight (their failures were reported already). */
  async close(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
    await this.#sealer.close();
  }

  async finish(tables: TableEntry[], meta: Pick<Snapshot, 'time' | 'host' | 'tags' | 'source' | 'schema'>): Promise<Snapshot> {
    await this.#flush();
    await this.#drain(0);
    await this.#writeIndex();
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
    const manifest = {
      version: 1 as const, repository: this.#repo.config.id, ...meta, encoding: 'ndjson' as const, packs, tables,
      stats: {
        rows, bytes: this.#bytes, chunks: this.#chunks, newChunks: this.#newChunks, newChunkBytes: this.#newChunkBytes,
        storedBytes: this.#storedBytes, durationMs: this.#reporter.elapsedMs,
      },
    };
    const { codec, level } = this.#repo.config.compression;
    const { file, hash } = await encodeManifest(manifest, codec, level);
    await this.#repo.store.put(snapshotKey(hash), file);
    this.#reporter.bytesOut += file.length;
    this.#reporter.progress('done', undefined, true);
    const snapshot = { ...manifest, id: hash, manifestBytes: file.length };
    this.#reporter.completed({
      snapshot: hash, tables: tables.length, chunks: this.#chunks, newChunks: this.#newChunks,
      storedBytes: this.#storedBytes + file.length,
    });
    return snapshot;
  }
}
