/**
 * A PostgreSQL database as the source of a backup: the tables' COPY text streams (see
 * engines/postgres/postgres-copy-source.ts) cut into the repository's chunks by {@link CopyChunker}.
 * The driver and the engine's code are loaded only when a PostgreSQL location is backed up.
 */
import type { RowBatch } from '../core/encoding.js';
import type { DatabaseSchema, TableSchema } from '../core/schema.js';
import type { DatabaseLocation } from '../engines/engine.js';
import type { PostgresCopySource } from '../engines/postgres/postgres-copy-source.js';
import { identityValues } from './chunker.js';
import type { ChunkerSettings } from './config.js';
import { CopyChunker } from './copy-chunker.js';
import type { ChunkBatch } from './native-chunks.js';
import type { RowSource } from './source.js';

/** Bytes of COPY output gathered before they are cut into chunks. */
const BATCH_BYTES = 256 << 10;

/** The connections a backup reads with by default: one per CPU, at most 4. */
export async function defaultJobs(): Promise<number> {
  const { availableParallelism } = await import('node:os');
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** Opens `location` (a PostgreSQL one) for a backup of `tables` (all when undefined) with `jobs` connections. */
export async function openPostgresSource(location: DatabaseLocation, options: { tables?: string[]; excludeTables?: string[]; jobs?: number; splitRows?: number; onNotice?: (message: string) => void } = {}): Promise<RowSource & { rangeCount(table: TableSchema): number }> {
  const { PostgresCopySource } = await import('../engines/postgres/postgres-copy-source.js');
  const source = await PostgresCopySource.open(location, {
    jobs: options.jobs ?? (await defaultJobs()),
    ...(options.tables ? { include: options.tables } : {}),
    ...(options.excludeTables ? { exclude: options.excludeTables } : {}),
    ...(options.splitRows !== undefined ? { splitRows: options.splitRows } : {}),
  });
  for (const w of source.warnings) options.onNotice?.(w);
  source.plan(source.schema.tables);
  return new CopyRowSource(source);
}

/** {@link RowSource} over a {@link PostgresCopySource}: chunks come from {@link copyChunks}, never from `batches`. */
class CopyRowSource implements RowSource {
  readonly #source: PostgresCopySource;
  readonly encoding = 'pg-copy-text' as const;

  constructor(source: PostgresCopySource) {
    this.#source = source;
  }

  get schema(): DatabaseSchema {
    return this.#source.schema;
  }

  /** How many key ranges `table` is read in (1: whole; see postgres-copy-source.ts). */
  rangeCount(table: TableSchema): number {
    return this.#source.rangeCount(table);
  }

  rowCount(table: TableSchema): number {
    return this.#source.rowEstimate(table);
  }

  rowEstimate(table: TableSchema): number {
    return this.#source.rowEstimate(table);
  }

  batches(): Iterable<RowBatch> {
    throw new Error('CopyRowSource: rows are read through copyChunks');
  }

  async *copyChunks(table: TableSchema, settings: ChunkerSettings): AsyncGenerator<ChunkBatch> {
    const chunker = new CopyChunker(settings, identityValues(table));
    // The driver's pieces are small (a socket read each): cut them in batches of about BATCH_BYTES,
    // so that the per-batch work (a call into the packer, the index lookups' setup) is paid rarely.
    // A batch's data is valid until the next batch but one (CopyChunker reuses its buffers): backup
    // hashes and packs it before it asks for the next.
    let parts: Buffer[] = [];
    let size = 0;
    for await (const piece of this.#source.rows(table)) {
      parts.push(piece);
      size += piece.length;
      if (size < BATCH_BYTES) continue;
      const batch = chunker.pushParts(parts, size);
      parts = [];
      size = 0;
      if (batch) yield batch;
    }
    if (size > 0) {
      const batch = chunker.pushParts(parts, size);
      if (batch) yield batch;
    }
    const last = chunker.finish();
    if (last) yield last;
  }

  close(): Promise<void> {
    return this.#source.close();
  }
}
