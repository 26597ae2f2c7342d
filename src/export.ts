import * as fs from 'node:fs';
import * as path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { commitFile, removeQuietly, tempPathBeside } from './core/atomic-file.js';
import { DigestBuilder, type TableDigest } from './core/encoding.js';
import { DurableFileWriter } from './core/file-writer.js';
import { UsageError } from './core/errors.js';
import type { EventListener } from './core/events.js';
import { ProgressReporter } from './core/progress.js';
import { Sink } from './core/sink.js';
import { codecByName, type CodecName } from './codecs/codec.js';
import { ZstdFileWriter } from './codecs/zstd-file-writer.js';
import { selectTables } from './engines/sqlite/sqlite-schema.js';
import { SqliteSource } from './engines/sqlite/sqlite-source.js';
import { FORMAT_EXTENSIONS, GENERATOR, type ExportHeader, type FormatName, type FormatWriter } from './formats/format.js';
import { JsonWriter } from './formats/json-format.js';
import { NdjsonWriter } from './formats/ndjson-format.js';
import { SqlWriter } from './formats/sql-format.js';

export interface ExportOptions {
  format: FormatName;
  /** Output file; `-` for standard output; default a timestamped file in `./backups/`. */
  output?: string;
  /** Directory for the default output name. */
  outputDir?: string;
  compress?: CodecName;
  /** Compression level (gzip 1–9, zstd 1–19). */
  level?: number;
  tables?: string[];
  excludeTables?: string[];
  onEvent?: EventListener;
  /** Write to this stream instead of a file (the library form of `-o -`). */
  stream?: Writable;
}

export interface ExportResult {
  /** The file written, or `-` for a stream. */
  path: string;
  format: FormatName;
  compression: CodecName;
  rows: number;
  /** Bytes of the (compressed) output. */
  bytes: number;
  tables: { name: string; rows: number; sha256: string }[];
  durationMs: number;
  /** Connections that read the rows: the background readers (2 to 4, on threads of their own), or 1. */
  readers: number;
}

export const FORMAT_WRITERS: Readonly<Record<FormatName, () => FormatWriter>> = {
  json: () => new JsonWriter(),
  ndjson: () => new NdjsonWriter(),
  sql: () => new SqlWriter(),
};

/** Checks a format name from the user. */
export function parseFormat(name: string): FormatName {
  if (name in FORMAT_WRITERS) return name as FormatName;
  throw new UsageError(`unknown format ${JSON.stringify(name)}`, {
    code: 'E_UNKNOWN_FORMAT',
    hint: 'Use --format json, ndjson or sql.',
  });
}

/** `./backups/<db>-<UTC time>.<ext>[.gz|.zst]` */
export function defaultExportPath(source: string, format: FormatName, compress: CodecName, dir = 'backups'): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
  const base = path.basename(source).replace(/\.(db|sqlite3?)$/i, '');
  return path.join(dir, `${base}-${stamp}.${FORMAT_EXTENSIONS[format]}${codecByName(compress).extension}`);
}

/**
 * Exports a SQLite database as one portable file. Streams: memory does not grow with the data. One
 * read transaction covers the whole export. The file appears only when complete (temporary name, fsync,
 * rename); on any failure nothing is left behind.
 *
 * @example
 * const result = await exportTo('app.db', { format: 'ndjson', output: 'app.ndjson.zst', compress: 'zstd' });
 */
export async function exportTo(source: string, options: ExportOptions): Promise<ExportResult> {
  const format = parseFormat(options.format);
  const compress = options.compress ?? 'none';
  const codec = codecByName(compress);
  const progress = new ProgressReporter('export', options.onEvent);
  const src = SqliteSource.open(source, { readers: 'auto' });
  let temp: string | undefined;
  let dest = '-';
  try {
    const schema = selectTables(src.schema, options.tables, options.excludeTables);
    const rowCounts: Record<string, number> = Object.create(null); // keyed by table name, and "__proto__" is one
    for (const table of schema.tables) rowCounts[table.name] = src.rowCount(table);
    const totalRows = Object.values(rowCounts).reduce((a, b) => a + b, 0);
    if (!options.stream) {
      dest = options.output && options.output !== '-' ? options.output : defaultExportPath(source, format, compress, options.outputDir);
      if (options.output === '-') dest = '-';
    }
    progress.started({ source: path.basename(source), target: dest, format, totalRows, tables: schema.tables.length });

    let out: Writable;
    if (options.stream) out = options.stream;
    else if (dest === '-') out = process.stdout;
    else {
      fs.mkdirSync(path.dirname(path.resolve(dest)), { recursive: true });
      temp = tempPathBeside(dest);
      out = codec.name === 'zstd' ? await ZstdFileWriter.create(temp, options.level) : new DurableFileWriter(temp);
    }
    const ownsStream = !options.stream && dest !== '-';
    let input: Writable = out;
    let done: Promise<void> | undefined;
    if (codec.name !== 'none' && !(out instanceof ZstdFileWriter)) {
      const compressor = await codec.compressor(options.level);
      done = pipeline(compressor, out, { end: ownsStream });
      input = compressor;
    }
    const sink = new Sink(input);
    const writer = FORMAT_WRITERS[format]();
    const header: ExportHeader = {
      schema,
      exportedAt: new Date().toISOString(),
      source: path.basename(source),
      rowCounts,
      totalRows,
      generator: GENERATOR,
    };
    const digests: Record<string, TableDigest> = Object.create(null);
    await sink.write(writer.header(header));
    let lastYield = Date.now();
    for (const [index, table] of schema.tables.entries()) {
      await sink.write(writer.tableStart(table, rowCounts[table.name]!, index));
      const digest = new DigestBuilder(writer.encoding);
      let first = true;
      let inRow = false; // the last batch ended inside a row (a large value comes in pieces)
      for (const batch of src.batches(table, writer.encoding, { batchRows: writer.batchRows })) {
        digest.add(batch);
        if (batch.rows === 0 && !batch.partial) continue; // the digest, from the engine
        if (!inRow) await sink.write(writer.batchPrefix(table, first));
        await sink.write(batch.data);
        inRow = batch.partial === true;
        if (!inRow) await sink.write(writer.batchSuffix(table));
        first = false;
        progress.rowsDone += batch.rows;
        progress.bytesIn += batch.data.length;
        progress.bytesOut = sink.bytes;
        progress.progress('rows', table.name);
        if (Date.now() - lastYield > 50) {
          await yieldToLoop(); // let timers (progress bars, monitor sampling) run
          lastYield = Date.now();
        }
      }
      digests[table.name] = digest.finish();
      await sink.write(writer.tableEnd(table, digests[table.name]!));
    }
    await sink.write(writer.footer(header, digests));
    progress.progress('done', undefined, true);
    await finishOutput(input, out, done, ownsStream);
    let bytes = sink.bytes;
    if (temp) {
      commitFile(temp, dest, { synced: true }); // both file writers fsync before they finish
      temp = undefined;
      bytes = fs.statSync(dest).size;
    }
    progress.bytesOut = bytes;
    const result: ExportResult = {
      path: dest,
      format,
      compression: codec.name,
      rows: progress.rowsDone,
      bytes,
      tables: schema.tables.map((t) => ({ name: t.name, ...digests[t.name]! })),
      durationMs: Date.now() - progress.startedAt,
      readers: src.readers,
    };
    progress.completed({ path: dest, format, compression: codec.name, tables: result.tables.length });
    return result;
  } catch (err) {
    if (temp) removeQuietly(temp);
    progress.failed(err);
    throw err;
  } finally {
    src.close();
  }
}

async function finishOutput(input: Writable, out: Writable, compressed: Promise<void> | undefined, owns: boolean): Promise<void> {
  if (compressed) {
    input.end();
    await compressed; // the pipeline ends the file stream itself
    return;
  }
  if (!owns) return;
  await new Promise<void>((resolve, reject) => {
    out.once('error', reject);
    out.end(() => resolve());
  });
}
