import type { TableDigest } from '../core/encoding.js';
import { IntegrityError, ScriptoriumError } from '../core/errors.js';
import type { DatabaseSchema, TableSchema } from '../core/schema.js';
import type { ByteReader } from './byte-reader.js';
import type { ExportHeader, FormatWriter, ImportItem } from './format.js';

/**
 * The original system's document, streamed: `{"export_info": {...}, "tables": {"name": [{row}, ...]}}`.
 * `export_info` keeps the original fields (timestamp, version, database_version, total_records,
 * export_method) and adds the schema; a trailing `digests` member carries each table's digest.
 */
export const JSON_FORMAT_ID = 'scriptorium-json';
export const JSON_VERSION = 1;

export class JsonWriter implements FormatWriter {
  readonly encoding = 'json' as const;
  readonly batchRows = 2000;

  header(h: ExportHeader): string {
    const info = {
      timestamp: h.exportedAt,
      version: '1.0',
      database_version: h.schema.meta.userVersion ?? 0,
      total_records: h.totalRows,
      export_method: 'streaming',
      format: JSON_FORMAT_ID,
      format_version: JSON_VERSION,
      generator: h.generator,
      source: h.source,
      record_counts: h.rowCounts,
      schema: h.schema,
    };
    return `{"export_info":${JSON.stringify(info)},\n"tables":{`;
  }

  tableStart(table: TableSchema, _rows: number, index: number): string {
    return `${index === 0 ? '' : ','}\n${JSON.stringify(table.name)}:[`;
  }

  batchPrefix(_table: TableSchema, first: boolean): string {
    return first ? '\n' : ',\n';
  }

  batchSuffix(): string {
    return '';
  }

  tableEnd(): string {
    return '\n]';
  }

  footer(_h: ExportHeader, digests: Record<string, TableDigest>): string {
    return `\n},\n"digests":${JSON.stringify(digests)}}\n`;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJ = 0x7b;
const CLOSE_OBJ = 0x7d;
const OPEN_ARR = 0x5b;
const CLOSE_ARR = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** Index just past the closing quote of a string whose opening quote is at `i`, or -1 if incomplete. */
function stringEnd(buf: Buffer, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = buf.indexOf(QUOTE, from);
    if (q < 0) return -1;
    let b = q - 1;
    while (buf[b] === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** Index just past the value starting at `i` (object, array, string or scalar), or -1 if incomplete. */
function valueEnd(buf: Buffer, i: number): number {
  const c = buf[i];
  if (c === QUOTE) return stringEnd(buf, i);
  if (c !== OPEN_OBJ && c !== OPEN_ARR) {
    let j = i;
    while (j < buf.length && buf[j] !== COMMA && buf[j] !== CLOSE_OBJ && buf[j] !== CLOSE_ARR && buf[j]! > 0x20) j++;
    return j < buf.length ? j : -1;
  }
  let depth = 0;
  for (let j = i; j < buf.length; j++) {
    const b = buf[j];
    if (b === QUOTE) {
      const e = stringEnd(buf, j);
      if (e < 0) return -1;
      j = e - 1;
    } else if (b === OPEN_OBJ || b === OPEN_ARR) depth++;
    else if (b === CLOSE_OBJ || b === CLOSE_ARR) {
      if (--depth === 0) return j + 1;
    }
  }
  return -1;
}

const NEWLINE = 0x0a;

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * The fast path for rows laid out as scriptorium writes them, one per line: finds, with a search for
 * newlines only, the last place in `view` (which starts at a row's `{`) where a line ends in `},` and
 * the next one starts with `{`, or where a line ends in `}` and the next one starts with `]` (the end of
 * the table). A raw newline is never inside a JSON string, and in a row (an object of scalars and
 * `{"$blob":…}` objects) a comma is followed by a member name, never by `{`: so such a place is always
 * between two rows. Returns the end of the rows (`end`, exclusive), where reading goes on (`next`: the
 * next row, or after `]`), and whether the table ended; null when `view` holds no such place (a row
 * longer than the view, or rows not one per line), and the caller scans value by value instead. The
 * slice may hold several rows per line: the loader parses it strictly (one comma between rows).
 */
function lineRun(view: Buffer): { end: number; next: number; closed: boolean } | null {
  let end = -1;
  let next = -1;
  for (let nl = view.indexOf(NEWLINE); nl >= 0; nl = view.indexOf(NEWLINE, nl + 1)) {
    let p = nl - 1;
    while (p > 0 && isSpace(view[p])) p--;
    let q = nl + 1;
    while (q < view.length && isSpace(view[q])) q++;
    if (q >= view.length) break; // the next line is not in the view yet
    if (view[p] === COMMA && view[p - 1] === CLOSE_OBJ && view[q] === OPEN_OBJ) {
      end = p;
      next = q;
    } else if (view[p] === CLOSE_OBJ && view[q] === CLOSE_ARR) {
      return { end: p + 1, next: q + 1, closed: true };
    }
  }
  return end > 0 ? { end, next, closed: false } : null;
}

/** A tokenizer over the document's structure; row values are only located, never parsed here. */
class JsonScanner {
  /** True after a run of rows: a comma before the next row may still be unread (it ended a buffer). */
  #afterRow = false;

  constructor(readonly reader: ByteReader) {}

  /** The next non-whitespace byte (not consumed), or -1 at the end of input. */
  async peek(): Promise<number> {
    for (;;) {
      let view: Buffer | undefined = this.reader.view;
      let i = 0;
      while (i < view.length && (view[i] === 0x20 || view[i] === 0x0a || view[i] === 0x0d || view[i] === 0x09)) i++;
      this.reader.skip(i);
      if (i < view.length) return view[i]!;
      view = undefined; // see value()
      if (!(await this.reader.fill())) return -1;
    }
  }

  async expect(byte: number, what: string): Promise<void> {
    const b = await this.peek();
    if (b !== byte) throw b < 0 ? truncated(what) : corrupt(`expected ${what}`);
    this.reader.skip(1);
  }

  /** The raw bytes of the next whole value. */
  async value(what: string): Promise<Buffer> {
    if ((await this.peek()) < 0) throw truncated(what);
    for (;;) {
      let view: Buffer | undefined = this.reader.view;
      const end = valueEnd(view, 0);
      if (end >= 0) {
        this.reader.skip(end);
        return view.subarray(0, end);
      }
      // Drop the view before the reader fills: when its buffer grows, the old one must be garbage at
      // once (a suspended function keeps its locals), or a long value costs its size once more.
      view = undefined;
      if (!(await this.reader.fill())) throw truncated(what);
    }
  }

  async key(): Promise<string> {
    const raw = await this.value('a member name');
    const key = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof key !== 'string') throw corrupt('expected a member name');
    await this.expect(COLON, '":"');
    return key;
  }

  /** After a value inside an object or array: true if another follows (a comma), false at `close`. */
  async more(close: number, what: string): Promise<boolean> {
    const b = await this.peek();
    if (b === COMMA) {
      this.reader.skip(1);
      return true;
    }
    if (b === close) {
      this.reader.skip(1);
      return false;
    }
    throw b < 0 ? truncated(what) : corrupt(`expected "," or "${String.fromCharCode(close)}" in ${what}`);
  }

  /**
   * Up to `max` whole row objects of an array as one slice (rows and the separators between them);
   * `rows` is -1 when the slice came from the line fast path (the loader counts them as it parses);
   * `long` (and no rows) when the next row is too long to hold: read it with {@link rowPieces}.
   */
  async rows(max: number): Promise<{ data: Buffer; rows: number; closed: boolean; long?: boolean }> {
    for (;;) {
      let first = await this.peek();
      if (first === COMMA && this.#afterRow) {
        this.reader.skip(1);
        this.#afterRow = false;
        first = await this.peek();
      }
      if (first === CLOSE_ARR) {
        this.reader.skip(1);
        this.#afterRow = false;
        return { data: Buffer.alloc(0), rows: 0, closed: true };
      }
      if (first !== OPEN_OBJ) throw first < 0 ? truncated('a table') : corrupt('expected a row object');
      let view: Buffer | undefined = this.reader.view;
      const fast = lineRun(view);
      if (fast) {
        this.#afterRow = false;
        this.reader.skip(fast.next);
        return { data: view.subarray(0, fast.end), rows: -1, closed: fast.closed };
      }
      let pos = 0;
      let end = 0;
      let rows = 0;
      while (rows < max) {
        const e = valueEnd(view, pos);
        if (e < 0) break;
        end = e;
        rows++;
        pos = e;
        while (pos < view.length && view[pos]! <= 0x20) pos++;
        if (pos >= view.length) break;
        if (view[pos] === CLOSE_ARR) break;
        if (view[pos] !== COMMA) throw corrupt('expected "," between rows');
        pos++;
        while (pos < view.length && view[pos]! <= 0x20) pos++;
        if (pos >= view.length || view[pos] !== OPEN_OBJ) break;
      }
      if (rows > 0) {
        // Consume the rows and a following comma (the next call starts at the next row or at "]").
        let skip = end;
        while (skip < view.length && view[skip]! <= 0x20) skip++;
        this.#afterRow = view[skip] !== COMMA;
        if (!this.#afterRow) skip++;
        this.reader.skip(skip);
        return { data: view.subarray(0, end), rows, closed: false };
      }
      // A row this long holds a large value: its reader takes it in pieces (rowPieces), never whole.
      if (view.length >= STREAMED_ROW_BYTES) return { data: view.subarray(0, 0), rows: 0, closed: false, long: true };
      view = undefined; // see value()
      if (!(await this.reader.fill())) throw truncated('a row');
    }
  }

  /**
   * The row object that starts the unread bytes, in pieces (views valid until the next is asked for),
   * found by its braces outside strings: for a row too long to hold. Iterate it to its end.
   */
  async *rowPieces(): AsyncGenerator<Buffer> {
    const account = this.reader.unitBound();
    let depth = 0;
    let inString = false;
    let backslashes = 0; // in a string: backslashes that ended the previous piece
    for (;;) {
      let view: Buffer | undefined = this.reader.view;
      let j = 0;
      let end = -1;
      while (j < view.length) {
        if (inString) {
          const q = view.indexOf(QUOTE, j);
          const stop = q < 0 ? view.length : q;
          let b = stop - 1;
          while (b >= j && view[b] === BACKSLASH) b--;
          const run = stop - 1 - b + (b < j ? backslashes : 0);
          if (q < 0) {
            backslashes = run;
            j = view.length;
            break;
          }
          backslashes = 0;
          j = q + 1;
          if (run % 2 === 0) inString = false;
          continue;
        }
        const c = view[j++];
        if (c === QUOTE) {
          inString = true;
          backslashes = 0;
        } else if (c === OPEN_OBJ || c === OPEN_ARR) depth++;
        else if (c === CLOSE_OBJ || c === CLOSE_ARR) {
          if (--depth === 0) {
            end = j;
            break;
          }
        }
      }
      const piece = view.subarray(0, end >= 0 ? end : j);
      view = undefined; // see value()
      account(piece);
      this.reader.skip(piece.length);
      if (piece.length > 0) yield piece;
      if (end >= 0) {
        this.#afterRow = true; // a comma may follow before the next row
        return;
      }
      if (!(await this.reader.fill())) throw truncated('a row');
    }
  }
}

/** A row object at least this long (it holds a large value) is handed to the loader in pieces. */
export const STREAMED_ROW_BYTES = 4 << 20;

/** Reads a json export written by scriptorium (the original document plus its schema). */
export async function* readJson(reader: ByteReader, batchRows = 2000): AsyncGenerator<ImportItem> {
  const scan = new JsonScanner(reader);
  reader.describe = () => `json: the value at byte ${reader.bytesRead - reader.view.length}`;
  await scan.expect(OPEN_OBJ, 'the document');
  let schema: DatabaseSchema | undefined;
  let sawTables = false;
  /** What export_info says the document holds (the original format's record_counts and total_records). */
  let counts: { tables?: number; rows?: number } = {};
  if ((await scan.peek()) === CLOSE_OBJ) throw corrupt('the document is empty');
  do {
    const key = await scan.key();
    if (key === 'export_info') {
      const info = parseMember(await scan.value('export_info'), 'export_info') as Record<string, unknown>;
      if (!info.schema) {
        throw new ScriptoriumError('E_UNKNOWN_FORMAT', 'json: export_info has no schema', {
          hint: 'This JSON was not written by scriptorium (or by a version without schemas); its tables cannot be rebuilt exactly.',
        });
      }
      if (typeof info.format_version === 'number' && info.format_version > JSON_VERSION) {
        throw new ScriptoriumError('E_VERSION', `json: format version ${info.format_version} is newer than this scriptorium reads`, {
          hint: 'Upgrade scriptorium to import this file.',
        });
      }
      schema = info.schema as DatabaseSchema;
      const recorded = info.record_counts;
      counts = {
        ...(recorded && typeof recorded === 'object' && !Array.isArray(recorded) ? { tables: Object.keys(recorded).length } : {}),
        ...(typeof info.total_records === 'number' ? { rows: info.total_records } : {}),
      };
      yield { kind: 'schema', schema };
    } else if (key === 'tables') {
      if (!schema) throw corrupt('"tables" comes before "export_info"');
      sawTables = true;
      await scan.expect(OPEN_OBJ, 'the tables object');
      if ((await scan.peek()) === CLOSE_OBJ) reader.skip(1);
      else {
        do {
          const table = await scan.key();
          await scan.expect(OPEN_ARR, `the rows of ${JSON.stringify(table)}`);
          for (;;) {
            const run = await scan.rows(batchRows);
            if (run.long) {
              const pieces = scan.rowPieces();
              yield { kind: 'row-pieces', table, encoding: 'json', pieces };
              for await (const _ of pieces); // whatever the loader left of the row (it reads it all)
              continue;
            }
            if (run.rows !== 0) yield { kind: 'rows', table, encoding: 'json', batch: { data: run.data, rows: run.rows } };
            if (run.closed) break;
          }
        } while (await scan.more(CLOSE_OBJ, 'the tables object'));
      }
    } else if (key === 'digests') {
      const digests = parseMember(await scan.value('digests'), 'digests') as Record<string, TableDigest>;
      for (const [table, digest] of Object.entries(digests)) yield { kind: 'digest', table, encoding: 'json', digest };
    } else {
      await scan.value(JSON.stringify(key)); // unknown members are skipped, as a JSON reader would
    }
  } while (await scan.more(CLOSE_OBJ, 'the document'));
  if ((await scan.peek()) >= 0) throw corrupt('data after the end of the document');
  if (!sawTables) throw truncated('the tables');
  yield { kind: 'end', ...counts };
}

/**
 * A member scriptorium wrote with JSON.stringify, parsed; one that is not JSON, or too long for a
 * JavaScript string (so not written by JSON.stringify), is damage.
 */
function parseMember(raw: Buffer, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw corrupt(`${what} is not valid JSON`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw corrupt(`${what} is not an object`);
  return value;
}

function corrupt(what: string): IntegrityError {
  return new IntegrityError('E_CORRUPT', `json: ${what}`, { hint: 'The file is damaged or was edited; nothing was written to the target.' });
}

function truncated(what: string): IntegrityError {
  return new IntegrityError('E_TRUNCATED', `json: the document ends before ${what}`, {
    hint: 'The export is incomplete (interrupted copy or download?); nothing was written to the target.',
  });
}
