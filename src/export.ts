import * as fs from 'node:fs';
import * as path from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Duplex, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DigestBuilder, type TableDigest } from './core/encoding.js';
import { DurableFileWriter } from './core/file-writer.js';
import { UsageError } from './core/errors.js';
import type { EventListener } from './core/events.js';
import { ProgressReporter } from './core/progress.js';
import { Sink } from './core/sink.js';
import { checkTarget, commitTarget, discardTemp, planError, prepareParent, sweepStaleTemps, targetError, tempFor, type TargetPlan } from './core/target-file.js';
import { codecByName, type CodecName } from './codecs/codec.js';
import { ZstdFileWriter } from './codecs/zstd-file-writer.js';
import { AgeFileWriter } from './codecs/age-file-writer.js';
import { AgeEncryptStream, AgeSealer, type AgeEncryption } from './codecs/age-writer.js';
import type { EngineName, EngineSource } from './engines/engine.js';
import { engineOf, resolveLocation } from './engines/registry.js';
import { FORMAT_EXTENSIONS, GENERATOR, type ExportHeader, type FormatName, type FormatWriter } from './formats/format.js';
import { JsonWriter } from './formats/json-format.js';
import { NdjsonWriter } from './formats/ndjson-format.js';
import { PostgresSqlWriter } from './formats/postgres-sql-format.js';
import { SqlWriter } from './formats/sql-format.js';

export interface ExportOptions {
  format: FormatName;
  /** Output file; `-` for standard output; default a timestamped file in `./backups/`. */
  output?: string;
  /**
   * Replace an existing regular `output` (only once the export is complete). Never replaces the database
   * being exported (or its -wal, -shm, -journal), a symlink or anything that is not a regular file.
   */
  force?: boolean;
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
  /** Encrypt the (compressed) export as a standard age file, to a passphrase or to X25519 recipients. */
  encryption?: AgeEncryption;
  /**
   * The source's engine when its location does not say (`postgres` with an empty source or `-`: the
   * PG* environment variables). A `postgres://` URL is PostgreSQL, anything else a SQLite file.
   */
  engine?: EngineName;
}

export interface ExportResult {
  /** The file written, or `-` for a stream. */
  path: string;
  format: FormatName;
  compression: CodecName;
  /** How the file is encrypted (an age file), when it is. */
  encryption?: AgeEncryption['kind'];
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
  if (typeof name === 'string' && Object.hasOwn(FORMAT_WRITERS, name)) return name as FormatName;
  throw new UsageError(`unknown format ${JSON.stringify(name)}`, {
    code: 'E_UNKNOWN_FORMAT',
    hint: 'Use --format json, ndjson or sql.',
  });
}

/** `./backups/<db>-<UTC time>.<ext>[.gz|.zst][.age]` */
export function defaultExportPath(source: string, format: FormatName, compress: CodecName, dir = 'backups', encrypted = false): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
  const base = path.basename(source).replace(/\.(db|sqlite3?)$/i, '');
  return path.join(dir, `${base}-${stamp}.${FORMAT_EXTENSIONS[format]}${codecByName(compress).extension}${encrypted ? '.age' : ''}`);
}

/**
 * The default output path, made unique: when a file of that name exists (two exports in the same
 * second), `-2`, `-3`, ... is added after the time. The commit never overwrites it either.
 */
function freeDefaultPath(source: string, format: FormatName, compress: CodecName, dir?: string, encrypted = false): string {
  const first = defaultExportPath(source, format, compress, dir, encrypted);
  const ext = `.${FORMAT_EXTENSIONS[format]}${codecByName(compress).extension}${encrypted ? '.age' : ''}`;
  const stem = first.slice(0, -ext.length);
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? first : `${stem}-${n}${ext}`;
    try {
      fs.lstatSync(candidate);
    } catch {
      return candidate;
    }
  }
}

const EXISTS_HINT = 'Choose another file, or pass --force to replace it (it is replaced only once the export is complete).';

/**
 * Exports a database (a SQLite file, or a PostgreSQL URL) as one portable file. Streams: memory does not grow with the data. One
 * read transaction covers the whole export. The file appears only when complete (temporary name, fsync,
 * rename); on any failure nothing is left behind. An existing output is replaced only with `force`, and
 * never when it is the database itself (see src/core/target-file.ts for what else is refused).
 *
 * @example
 * const result = await exportTo('app.db', { format: 'ndjson', output: 'app.ndjson.zst', compress: 'zstd' });
 */
export async function exportTo(source: string, options: ExportOptions): Promise<ExportResult> {
  const format = parseFormat(options.format);
  const compress = options.compress ?? 'none';
  const codec = codecByName(compress);
  const progress = new ProgressReporter('export', options.onEvent);
  const location = resolveLocation(source, options.engine);
  const engine = engineOf(location);
  const isFile = engine.capabilities.fileLocation;
  // Made first, so that a bad recipient or an empty passphrase fails before anything is opened, and a
  // passphrase's scrypt (~0.9 s of CPU at age's 2^18) starts at once on the thread pool: while this
  // thread opens the source and counts its rows, the second core is otherwise idle, and once the rows
  // flow scrypt shares the cores with the export's threads (measured: the export then waited for it at
  // the end). Into a file, its header is written last, at offset 0 (AgeSealer.deferred); a stream waits
  // for it before its first byte (AgeSealer.whole, below).
  const early = options.encryption ? AgeSealer.deferred(options.encryption) : undefined;
  let plan: TargetPlan | undefined;
  let dest = '-';
  // The output is checked before the source is opened: refusing to write over the database (or its
  // -wal, -shm) must not touch it, and a reader would write to its -shm. A missing source is left to
  // SqliteSource.open, which says so.
  const toFile = !options.stream && options.output !== '-';
  const planOutput = (): TargetPlan => {
    const explicit = options.output !== undefined && options.output !== '';
    dest = explicit ? options.output! : freeDefaultPath(isFile ? source : location.baseName, format, compress, options.outputDir, options.encryption !== undefined);
    const checked = checkTarget(dest, {
      op: 'export',
      force: explicit && (options.force ?? false),
      existsHint: EXISTS_HINT,
      sources: isFile ? [{ path: source, what: 'the database being exported', database: true }] : [],
      createParent: true,
    });
    if (!checked.parentMissing) sweepStaleTemps(checked, (message, file) => progress.notice(message, file));
    return checked;
  };
  if (toFile && (!isFile || fs.existsSync(source))) plan = planOutput();
  const shownSource = isFile ? path.basename(source) : location.display; // never a password
  const src: EngineSource = await engine.openSource(location);
  let temp: string | undefined;
  let outFile: AgeFileWriter | undefined;
  try {
    if (toFile) plan ??= planOutput(); // (the source appeared only now)
    const schema = src.select(options.tables, options.excludeTables);
    const rowCounts: Record<string, number> = Object.create(null); // keyed by table name, and "__proto__" is one
    for (const table of schema.tables) rowCounts[table.name] = await src.rowCount(table);
    const totalRows = Object.values(rowCounts).reduce((a, b) => a + b, 0);
    progress.started({ source: shownSource, target: dest, format, totalRows, tables: schema.tables.length });
    for (const warning of src.warnings) progress.notice(warning);

    const toTemp = !options.stream && plan !== undefined; // (the temporary file below)
    const age = early ? (toTemp ? early : await early.whole()) : undefined;
    let out: Writable;
    if (options.stream) out = options.stream;
    else if (!plan) out = process.stdout; // -o -
    else {
      plan = prepareParent(plan); // ./backups/ (or -o's folder) is created only now that there is something to write
      temp = tempFor(plan, 'tmp');
      // A file writer encrypts inside its own synchronous writes: no stream stage of its own.
      // Plain and encrypted: the chunks are sealed on a worker thread (AgeFileWriter), beside the rows.
      if (codec.name === 'zstd') out = await ZstdFileWriter.create(temp, options.level, age);
      else out = age ? (outFile = new AgeFileWriter(temp, age)) : new DurableFileWriter(temp);
    }
    const ownsStream = !options.stream && dest !== '-';
    let input: Writable = out;
    let done: Promise<void> | undefined;
    // Compression goes inside the encryption (age users expect to `age -d | zstd -d`).
    const stages: Duplex[] = [];
    if (codec.name !== 'none' && !(out instanceof ZstdFileWriter)) stages.push(await codec.compressor(options.level));
    if (age && !temp) stages.push(new AgeEncryptStream(age));
    if (stages.length > 0) {
      done = (pipeline as (...args: unknown[]) => Promise<void>)(...stages, out, { end: ownsStream });
      // A write error (a full disk) rejects this while the rows are still being written; the error
      // reaches the caller through the Sink and through the await below, never as an unhandled rejection.
      done.catch(() => undefined);
      input = stages[0]!;
    }
    const sink = new Sink(input);
    const writer = format === 'sql' && schema.engine === 'postgres' ? new PostgresSqlWriter() : FORMAT_WRITERS[format]();
    const header: ExportHeader = {
      schema,
      exportedAt: new Date().toISOString(),
      source: shownSource,
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
      // SQLite's batches are a plain generator (the extension encodes them); PostgreSQL's come from COPY.
      for await (const batch of src.batches(table, writer.encoding, { batchRows: writer.batchRows })) {
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
    // Before the rename, so that the file appears complete (AgeFileWriter wrote its header itself).
    if (temp && !(out instanceof AgeFileWriter)) await age?.writeHeaderInto(temp);
    let bytes = sink.bytes;
    if (temp && plan) {
      commitTarget(plan, temp, { synced: true }); // both file writers fsync before they finish
      temp = undefined;
      bytes = fs.statSync(plan.path).size;
    }
    progress.bytesOut = bytes;
    const result: ExportResult = {
      path: dest,
      format,
      compression: codec.name,
      ...(options.encryption ? { encryption: options.encryption.kind } : {}),
      rows: progress.rowsDone,
      bytes,
      tables: schema.tables.map((t) => ({ name: t.name, ...digests[t.name]! })),
      durationMs: Date.now() - progress.startedAt,
      readers: src.readers,
    };
    progress.completed({ path: dest, format, compression: codec.name, tables: result.tables.length });
    return result;
  } catch (caught) {
    let err = caught;
    outFile?.destroy(); // (its worker thread)
    if (temp) {
      discardTemp(temp);
      err = plan ? planError(plan, err, `export: writing ${dest}`) : targetError(err, `export: writing ${dest}`);
    }
    progress.failed(err);
    throw err;
  } finally {
    await src.close();
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
