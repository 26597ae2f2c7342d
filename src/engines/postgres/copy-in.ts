import { isUtf8 } from 'node:buffer';
import type { Hash } from 'node:crypto';
import { IntegrityError, ScriptoriumError } from '../../core/errors.js';
import type { LossyValues } from '../engine.js';
import { encodeFloat } from './row-codec.js';

/**
 * What a target column is, for loading: the value kinds of row-codec.ts, plus `numeric` (a SQLite
 * NUMERIC/DECIMAL column in PostgreSQL, which takes numbers but not text).
 */
export type ColumnClass = 'int' | 'float' | 'bool' | 'bytea' | 'text' | 'numeric';

/** The lossy cases, each with what `--allow-lossy` loads instead (the table in docs/cross-engine.md). */
export const LOSSY = {
  textInNumber: (type: string): string => `text in ${type} column (loaded as NULL)`,
  blobInNumber: (type: string): string => `a BLOB in ${type} column (loaded as NULL)`,
  realInInteger: 'a REAL with a fraction in an integer column (rounded to the nearest integer)',
  pastInt8: 'an integer past the range of bigint (loaded as NULL)',
  bigInFloat: 'an integer that double precision cannot hold exactly (loaded as the nearest double)',
  exponentInNumeric: 'a REAL written with an exponent in a numeric column (PostgreSQL writes it out in full, e.g. 1e300 as 301 digits)',
  numberInBool: 'a number other than 0 and 1 in a boolean column (non-zero loaded as true)',
  boolInColumn: (type: string): string => `a boolean in ${type} column (loaded as NULL, in a text column as true/false)`,
  numberInText: 'a number in a text column (loaded as its digits: the value becomes text)',
  blobInText: 'a BLOB in a text column (loaded as its text when it is UTF-8 without NUL, otherwise as \\x and its hex)',
  nulInText: 'text with NUL (U+0000), which PostgreSQL text cannot hold (loaded without the NUL characters)',
  surrogateInText: 'text with an unpaired surrogate, which is not Unicode (loaded with U+FFFD in its place)',
  invalidUtf8InText: 'text that is not valid UTF-8 (SQLite stores any bytes as TEXT; loaded with U+FFFD for each invalid sequence)',
  textInBytea: 'text in a bytea column (loaded as its UTF-8 bytes: the value becomes a BLOB)',
  numberInBytea: 'a number in a bytea column (loaded as NULL)',
  blobInNonBytea: 'a BLOB in a column of this type (loaded as NULL)',
} as const;

/** Each class's column, as the lossy report names it. */
const TYPE_OF: Record<ColumnClass, string> = { int: 'an integer', float: 'a double precision', bool: 'a boolean', bytea: 'a bytea', text: 'a text', numeric: 'a numeric' };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const NL = 0x0a;
const TAB = 0x09;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

const INT8_MAX = '9223372036854775807';
const INT8_MIN = '9223372036854775808';
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');
const HEX_UPPER = Buffer.from('0123456789ABCDEF');

/** A growable byte buffer written to at `n`. */
class Out {
  buf: Buffer;
  n = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  need(extra: number): void {
    if (this.n + extra <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + extra + 1024));
    this.buf.copy(bigger, 0, 0, this.n);
    this.buf = bigger;
  }
  byte(b: number): void {
    this.need(1);
    this.buf[this.n++] = b;
  }
  range(src: Buffer, start: number, end: number): void {
    const len = end - start;
    this.need(len);
    if (len > 48) src.copy(this.buf, this.n, start, end);
    else {
      // Short ranges (most values): a loop is several times cheaper than Buffer#copy's call.
      const buf = this.buf;
      let n = this.n;
      for (let k = start; k < end; k++) buf[n++] = src[k]!;
    }
    this.n += len;
  }
  ascii(s: string): void {
    this.need(s.length);
    this.n += this.buf.write(s, this.n, 'latin1');
  }
  text(s: string): void {
    this.need(s.length * 3);
    this.n += this.buf.write(s, this.n, 'utf8');
  }
}

/** A value for COPY's text format: backslash, newline, carriage return and tab escaped. */
function escapeCopyText(text: string): string {
  return /[\\\n\r\t]/.test(text) ? text.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t')) : text;
}

/** A REAL's decimal text (`1.5e-7`) written out in full as PostgreSQL's numeric prints it (`0.00000015`). */
export function numericText(raw: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?$/.exec(raw);
  if (!m) return raw;
  const [, sign, int, frac = '', exp = '0'] = m;
  const e = Number(exp);
  const digits = int! + frac;
  const point = int!.length + e; // digits before the decimal point
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  out = out.replace(/^0+(?=\d)/, '');
  return /[1-9]/.test(out) ? `${sign}${out}` : out;
}

/**
 * Turns rows of an export (ndjson arrays or json objects, as bytes) into `COPY … FROM STDIN` text rows
 * in one pass over the bytes, with no string per value for the common cases: numbers, strings without
 * escapes and BLOBs are copied as byte ranges. Alongside it writes each row's canonical encoding (how
 * the loaded table must read back) and hashes the file's rows (the file digest), one hash update per
 * batch. Values that do not fit their column exactly are counted per column and kind; without
 * `allowLossy` the first one stops all COPY output (the rest is only checked, to report every case).
 */
export class CopyRowEncoder {
  readonly #table: string;
  readonly #columns: readonly string[];
  readonly #classes: readonly ColumnClass[];
  readonly #fromSqlite: boolean;
  readonly #allowLossy: boolean;
  /** Object rows: each column's `"name"` bytes, which must come in order. */
  readonly #keys: Buffer[] | null;
  readonly #lossy = new Map<string, LossyValues>();
  /** Rows seen so far (for examples' row numbers). */
  rows = 0;
  // The batch being encoded, and the position in it.
  #d: Buffer = Buffer.alloc(0);
  /** Whether the whole batch is valid UTF-8 (else each string is checked: SQLite TEXT may hold any bytes). */
  #utf8 = true;
  #i = 0;
  #copy = new Out(16);
  #canon = new Out(16);

  constructor(options: { table: string; columns: readonly string[]; classes: readonly ColumnClass[]; fromSqlite: boolean; allowLossy: boolean; objects: boolean }) {
    this.#table = options.table;
    this.#columns = options.columns;
    this.#classes = options.classes;
    this.#fromSqlite = options.fromSqlite;
    this.#allowLossy = options.allowLossy;
    this.#keys = options.objects ? options.columns.map((c) => Buffer.from(JSON.stringify(c))) : null;
  }

  /** Every lossy kind of value seen in this table so far. */
  get lossy(): LossyValues[] {
    return [...this.#lossy.values()];
  }

  /** Whether COPY output has stopped (a lossy value without --allow-lossy). */
  get blocked(): boolean {
    return !this.#allowLossy && this.#lossy.size > 0;
  }

  #fail(what: string): never {
    const i = this.#i;
    throw new IntegrityError('E_CORRUPT', `import: a row of table ${JSON.stringify(this.#table)} is damaged (${what}, near ${JSON.stringify(this.#d.toString('utf8', i, Math.min(this.#d.length, i + 40)))})`, {
      hint: 'The file is damaged or was edited; nothing was written to the target.',
    });
  }

  #space(): void {
    const d = this.#d;
    let i = this.#i;
    while (i < d.length) {
      const c = d[i]!;
      if (c !== 0x20 && c !== NL && c !== 0x0d && c !== TAB) break;
      i++;
    }
    this.#i = i;
  }

  /** Scans a JSON string at the position (its opening quote); returns whether it has escapes. */
  #string(): boolean {
    const d = this.#d;
    const n = d.length;
    let j = this.#i + 1;
    let escaped = false;
    for (;;) {
      if (j >= n) this.#fail('an unterminated string');
      const c = d[j]!;
      if (c === QUOTE) break;
      if (c === BACKSLASH) {
        escaped = true;
        j += 2;
        continue;
      }
      if (c < 0x20) escaped = true; // a raw control character: JSON.parse refuses it
      j++;
    }
    this.#i = j + 1;
    return escaped;
  }

  #decode(start: number, end: number): string {
    try {
      return JSON.parse(this.#d.toString('utf8', start, end)) as string;
    } catch {
      return this.#fail('a bad string');
    }
  }

  /**
   * Encodes one batch: returns the COPY text (empty once blocked) and the rows in it; updates `file`
   * with the rows as the file has them (each followed by `separator`) and `sent` with their canonical
   * encodings (ndjson lines).
   */
  encode(data: Buffer, separator: Buffer, file: Hash, sent: Hash): { copy: Buffer; rows: number } {
    const n = data.length;
    this.#d = data;
    this.#utf8 = isUtf8(data);
    this.#i = 0;
    const copy = (this.#copy = new Out(n + (n >> 2) + 64));
    const canon = (this.#canon = new Out(n + 64));
    const columns = this.#columns.length;
    const objects = this.#keys !== null;
    const open = objects ? LBRACE : LBRACKET;
    const close = objects ? RBRACE : RBRACKET;
    let rows = 0;
    /** Rows are laid out exactly as `row separator row …`: one hash update covers the batch. */
    let exact = true;
    const starts: number[] = [];
    const ends: number[] = [];
    this.#space();
    if (this.#i !== 0) exact = false;
    while (this.#i < n) {
      if (rows > 0) {
        if (objects) {
          if (data[this.#i] !== COMMA) this.#fail('rows not separated by a comma');
          this.#i++;
          this.#space();
        }
        const prev = ends[ends.length - 1]!;
        if (this.#i - prev !== separator.length || data.compare(separator, 0, separator.length, prev, this.#i) !== 0) exact = false;
      }
      starts.push(this.#i);
      if (data[this.#i] !== open) this.#fail(objects ? 'a row that is not an object' : 'a row that is not an array');
      this.#i++;
      this.#space();
      const row = this.rows + rows + 1;
      const blocked = this.blocked;
      const copyStart = copy.n;
      canon.byte(LBRACKET);
      let col = 0;
      if (data[this.#i] === close) this.#i++;
      else {
        for (;;) {
          if (col >= columns) this.#fail(`more values than the ${columns} columns`);
          if (objects) {
            const key = this.#keys![col]!;
            if (data[this.#i] !== QUOTE) this.#fail('a member without a name');
            const k = this.#i;
            const escaped = this.#string();
            const i = this.#i;
            if (escaped ? this.#decode(k, i) !== this.#columns[col] : i - k !== key.length || data.compare(key, 0, key.length, k, i) !== 0) {
              this.#i = k;
              this.#fail(`a member where column ${JSON.stringify(this.#columns[col])} belongs`);
            }
            this.#space();
            if (data[this.#i] !== COLON) this.#fail('a member without a value');
            this.#i++;
            this.#space();
          }
          if (col > 0) {
            copy.byte(TAB);
            canon.byte(COMMA);
          }
          this.#value(col, row);
          col++;
          this.#space();
          const c = data[this.#i];
          if (c === COMMA) {
            this.#i++;
            this.#space();
            continue;
          }
          if (c === close) {
            this.#i++;
            break;
          }
          this.#fail('a row that does not end');
        }
      }
      if (col !== columns) this.#fail(`${col} values for ${columns} columns`);
      ends.push(this.#i);
      copy.byte(NL);
      canon.byte(RBRACKET);
      canon.byte(NL);
      if (blocked || this.blocked) copy.n = copyStart; // nothing of a blocked load is sent
      rows++;
      this.#space();
    }
    if (exact && rows > 0 && ends[ends.length - 1] === n) {
      file.update(data);
      file.update(separator);
    } else {
      for (let r = 0; r < rows; r++) {
        file.update(data.subarray(starts[r], ends[r]));
        file.update(separator);
      }
    }
    sent.update(canon.buf.subarray(0, canon.n));
    this.rows += rows;
    this.#d = Buffer.alloc(0);
    return { copy: copy.buf.subarray(0, copy.n), rows };
  }

  /** Notes a value that cannot be carried exactly, from `start` to the position. */
  #note(col: number, what: string, start: number, row: number): void {
    const key = `${col}\0${what}`;
    const seen = this.#lossy.get(key);
    if (seen) {
      seen.count++;
      return;
    }
    const end = this.#i;
    const example = this.#d.toString('utf8', start, Math.min(end, start + 80));
    this.#lossy.set(key, { table: this.#table, column: this.#columns[col]!, what, count: 1, example: end - start > 80 ? `${example}…` : example, row });
  }

  /** A lossy value: noted, and loaded as `copyText` / `canonText` (only sent with --allow-lossy). */
  #lossyValue(col: number, what: string, start: number, row: number, copyText: string, canonText: string): void {
    this.#note(col, what, start, row);
    this.#copy.text(copyText);
    this.#canon.text(canonText);
  }

  #lossyNull(col: number, what: string, start: number, row: number): void {
    this.#note(col, what, start, row);
    this.#copy.ascii('\\N');
    this.#canon.ascii('null');
  }

  /** One value at the position: its COPY text and its canonical encoding. */
  #value(col: number, row: number): void {
    const data = this.#d;
    const copy = this.#copy;
    const canon = this.#canon;
    const cls = this.#classes[col]!;
    const start = this.#i;
    const c = data[start];
    if (c === QUOTE) {
      const escaped = this.#string();
      const end = this.#i;
      if (cls === 'text') {
        // Bytes that are not UTF-8 (a SQLite TEXT value may hold any): PostgreSQL text cannot hold them.
        const invalid = !this.#utf8 && !isUtf8(data.subarray(start + 1, end - 1));
        if (invalid) this.#note(col, LOSSY.invalidUtf8InText, start, row);
        if (!escaped && !invalid) {
          // Plain UTF-8 without quotes, backslashes or control characters: as it is, both ways.
          copy.range(data, start + 1, end - 1);
          canon.range(data, start, end);
          return;
        }
        // (Decoding puts U+FFFD for each invalid sequence.)
        let v = escaped ? this.#decode(start, end) : data.toString('utf8', start + 1, end - 1);
        if (v.includes('\u0000')) {
          this.#note(col, LOSSY.nulInText, start, row);
          v = v.replaceAll('\u0000', '');
        }
        if (LONE_SURROGATE.test(v)) {
          this.#note(col, LOSSY.surrogateInText, start, row);
          v = v.replace(LONE_SURROGATES, '\ufffd');
        }
        copy.text(escapeCopyText(v));
        canon.text(JSON.stringify(v));
        return;
      }
      if (cls === 'float' && !this.#fromSqlite && end - start === 5 && data.toString('latin1', start + 1, end - 1) === 'NaN') {
        copy.ascii('NaN'); // PostgreSQL's NaN float, as its export writes it
        canon.ascii('"NaN"');
        return;
      }
      if (cls === 'bytea') {
        const v = escaped ? this.#decode(start, end) : data.toString('utf8', start + 1, end - 1);
        const hex = Buffer.from(v).toString('hex').toUpperCase();
        this.#lossyValue(col, LOSSY.textInBytea, start, row, `\\\\x${hex}`, `{"$blob":"${hex}"}`);
        return;
      }
      this.#lossyNull(col, LOSSY.textInNumber(TYPE_OF[cls]), start, row);
      return;
    }
    if (c === 0x6e /* n */) {
      if (data.toString('latin1', start, start + 4) !== 'null') this.#fail('not a value');
      this.#i += 4;
      copy.ascii('\\N');
      canon.ascii('null');
      return;
    }
    if (c === 0x74 /* t */ || c === 0x66 /* f */) {
      const v = c === 0x74;
      const word = v ? 'true' : 'false';
      if (data.toString('latin1', start, start + word.length) !== word) this.#fail('not a value');
      this.#i += word.length;
      if (cls === 'bool') {
        copy.ascii(v ? 't' : 'f');
        canon.ascii(word);
      } else if (cls === 'text') this.#lossyValue(col, LOSSY.boolInColumn('a text'), start, row, word, JSON.stringify(word));
      else this.#lossyNull(col, LOSSY.boolInColumn(TYPE_OF[cls]), start, row);
      return;
    }
    if (c === LBRACE) {
      this.#blob(col, row, cls);
      return;
    }
    this.#number(col, row, cls);
  }

  /** `{"$blob":"HEX"}` at the position. */
  #blob(col: number, row: number, cls: ColumnClass): void {
    const data = this.#d;
    const start = this.#i;
    let j = start + 1;
    const skip = (): void => {
      while (j < data.length && (data[j] === 0x20 || data[j] === NL || data[j] === 0x0d || data[j] === TAB)) j++;
    };
    const bad = (): never => this.#fail('an object that is not {"$blob":"HEX"}');
    skip();
    if (data.toString('latin1', j, j + 7) !== '"$blob"') bad();
    j += 7;
    skip();
    if (data[j] !== COLON) bad();
    j++;
    skip();
    if (data[j] !== QUOTE) bad();
    const hexStart = ++j;
    while (j < data.length && isHex(data[j]!)) j++;
    const hexEnd = j;
    if (data[j] !== QUOTE || (hexEnd - hexStart) % 2 !== 0) bad();
    j++;
    skip();
    if (data[j] !== RBRACE) bad();
    this.#i = j + 1;
    if (cls === 'bytea') {
      const copy = this.#copy;
      const canon = this.#canon;
      copy.ascii('\\\\x');
      copy.range(data, hexStart, hexEnd);
      canon.ascii('{"$blob":"');
      canon.need(hexEnd - hexStart);
      for (let k = hexStart; k < hexEnd; k++) {
        const b = data[k]!;
        canon.buf[canon.n++] = b >= 0x61 ? b - 0x20 : b;
      }
      canon.ascii('"}');
      return;
    }
    if (cls === 'text') {
      const bytes = Buffer.from(data.toString('latin1', hexStart, hexEnd), 'hex');
      const s = bytes.toString('utf8');
      const text = !s.includes('\u0000') && Buffer.from(s).equals(bytes) ? s : `\\x${bytes.toString('hex')}`;
      this.#lossyValue(col, LOSSY.blobInText, start, row, escapeCopyText(text), JSON.stringify(text));
      return;
    }
    this.#lossyNull(col, cls === 'int' || cls === 'float' || cls === 'numeric' ? LOSSY.blobInNumber(TYPE_OF[cls]) : LOSSY.blobInNonBytea, start, row);
  }

  /** A JSON number at the position: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? */
  #number(col: number, row: number, cls: ColumnClass): void {
    const data = this.#d;
    const copy = this.#copy;
    const canon = this.#canon;
    const start = this.#i;
    let j = start;
    if (data[j] === MINUS) j++;
    const intStart = j;
    if (data[j] === ZERO) j++;
    else if (data[j]! > ZERO && data[j]! <= NINE) while (data[j]! >= ZERO && data[j]! <= NINE) j++;
    else this.#fail('not a value');
    const intEnd = j;
    let integer = true;
    if (data[j] === DOT) {
      integer = false;
      j++;
      if (!(data[j]! >= ZERO && data[j]! <= NINE)) this.#fail('not a value');
      while (data[j]! >= ZERO && data[j]! <= NINE) j++;
    }
    let exponent = false;
    if (data[j] === LOWER_E || data[j] === UPPER_E) {
      integer = false;
      exponent = true;
      j++;
      if (data[j] === PLUS || data[j] === MINUS) j++;
      if (!(data[j]! >= ZERO && data[j]! <= NINE)) this.#fail('not a value');
      while (data[j]! >= ZERO && data[j]! <= NINE) j++;
    }
    this.#i = j;
    const negative = intStart > start;
    switch (cls) {
      case 'int': {
        if (integer) {
          const digits = intEnd - intStart;
          if (digits < 19 || (digits === 19 && data.toString('latin1', intStart, intEnd) <= (negative ? INT8_MIN : INT8_MAX))) {
            if (negative && digits === 1 && data[intStart] === ZERO) {
              copy.byte(ZERO); // -0 is 0
              canon.byte(ZERO);
            } else {
              copy.range(data, start, j);
              canon.range(data, start, j);
            }
            return;
          }
          this.#lossyNull(col, LOSSY.pastInt8, start, row);
          return;
        }
        const x = Number(data.toString('latin1', start, j));
        if (Number.isInteger(x) && Math.abs(x) < 2 ** 63) {
          // An integral REAL (3.0, 1.0e+3): the same integer exactly.
          const s = BigInt(x).toString();
          copy.ascii(s);
          canon.ascii(s);
          return;
        }
        const r = rint(x);
        if (Number.isFinite(r) && Math.abs(r) < 2 ** 63) this.#lossyValue(col, LOSSY.realInInteger, start, row, BigInt(r).toString(), BigInt(r).toString());
        else this.#lossyNull(col, LOSSY.pastInt8, start, row);
        return;
      }
      case 'float': {
        const raw = data.toString('latin1', start, j);
        const text = raw === '9.0e+999' ? 'Infinity' : raw === '-9.0e+999' ? '-Infinity' : raw;
        const x = Number(text);
        if (integer && !Number.isSafeInteger(x) && BigInt(x) !== BigInt(raw)) {
          this.#lossyValue(col, LOSSY.bigInFloat, start, row, text, encodeFloat(x));
          return;
        }
        copy.ascii(text);
        canon.ascii(encodeFloat(x));
        return;
      }
      case 'bool': {
        if (j - start === 1 && (data[start] === ZERO || data[start] === ZERO + 1)) {
          const v = data[start] === ZERO + 1;
          copy.ascii(v ? 't' : 'f');
          canon.ascii(v ? 'true' : 'false');
          return;
        }
        const v = Number(data.toString('latin1', start, j)) !== 0;
        this.#lossyValue(col, LOSSY.numberInBool, start, row, v ? 't' : 'f', v ? 'true' : 'false');
        return;
      }
      case 'numeric': {
        const raw = data.toString('latin1', start, j);
        if (!exponent) {
          copy.ascii(raw);
          canon.ascii(`"${/^-0(\.0*)?$/.test(raw) ? raw.slice(1) : raw}"`);
          return;
        }
        const full = numericText(raw);
        this.#lossyValue(col, LOSSY.exponentInNumeric, start, row, full, JSON.stringify(full));
        return;
      }
      case 'text': {
        const raw = data.toString('latin1', start, j);
        if (this.#fromSqlite) this.#lossyValue(col, LOSSY.numberInText, start, row, raw, JSON.stringify(raw));
        else {
          copy.ascii(raw);
          canon.ascii(JSON.stringify(raw));
        }
        return;
      }
      case 'bytea':
        this.#lossyNull(col, LOSSY.numberInBytea, start, row);
        return;
    }
  }
}

function isHex(b: number): boolean {
  return (b >= ZERO && b <= NINE) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/** Rounds to the nearest integer, ties to even (PostgreSQL's float-to-integer cast). */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** The report of lossy values, one line per table, column and kind. */
export function describeLossy(found: readonly LossyValues[]): string {
  return found.map((f) => `table ${JSON.stringify(f.table)} column ${JSON.stringify(f.column)}: ${f.count} × ${f.what}; first in row ${f.row}: ${f.example}`).join('\n');
}

/**
 * Turns the VALUES tuples of a PostgreSQL sql export's INSERTs (`(1,'text',NULL,true)`, as bytes)
 * into COPY text rows, hashing each tuple as the file has it (the file digest, over tuples each
 * followed by `,\n`). Only the literals the writer uses are taken: NULL, true, false, integers and
 * quoted strings (standard_conforming_strings: a backslash in a string is a plain character); a
 * backslash outside a string is a psql meta-command and refused as one.
 */
export class SqlTupleEncoder {
  readonly #table: string;
  readonly #columns: number;
  rows = 0;

  constructor(table: string, columns: number) {
    this.#table = table;
    this.#columns = columns;
  }

  encode(data: Buffer, line: number, file: Hash): { copy: Buffer; rows: number } {
    const n = data.length;
    const out = new Out(n + 64);
    let i = 0;
    let rows = 0;
    let first = -1;
    let lastEnd = -1;
    let exact = true;
    const starts: number[] = [];
    const ends: number[] = [];
    const refuse = (what: string): never => {
      if (data[i] === BACKSLASH) {
        throw new ScriptoriumError('E_UNSUPPORTED_SQL', `sql: line ${line}: a psql meta-command (${data.toString('latin1', i, Math.min(n, i + 12)).split(/\s/)[0]}) is refused: a dump is data, not a script that runs programs`, {
          hint: "scriptorium's PostgreSQL sql exports never hold one; the file was edited or written by another tool. Nothing was written to the target.",
        });
      }
      throw new ScriptoriumError('E_UNSUPPORTED_SQL', `sql: line ${line}: the rows of table ${JSON.stringify(this.#table)} hold ${what} (near ${JSON.stringify(data.toString('utf8', i, Math.min(n, i + 30)))})`, {
        hint: 'import takes only the literal tuples a scriptorium PostgreSQL sql export holds; nothing was written to the target.',
      });
    };
    const space = (): void => {
      while (i < n && (data[i] === 0x20 || data[i] === NL || data[i] === 0x0d || data[i] === TAB)) i++;
    };
    for (;;) {
      space();
      if (i < n && data[i] === COMMA && rows > 0) {
        i++;
        space();
      }
      if (i >= n) break;
      if (data[i] !== 0x28 /* ( */) refuse('something that is not a tuple');
      const start = i;
      if (lastEnd >= 0 && (start - lastEnd !== 2 || data[lastEnd] !== COMMA || data[lastEnd + 1] !== NL)) exact = false;
      if (first < 0) first = start;
      i++;
      let col = 0;
      for (;;) {
        space();
        if (col > 0) out.byte(TAB);
        const c = data[i];
        if (c === 0x27 /* ' */) {
          i++;
          for (;;) {
            if (i >= n) refuse('an unterminated string');
            const b = data[i]!;
            if (b === 0x27) {
              if (data[i + 1] === 0x27) {
                out.byte(0x27);
                i += 2;
                continue;
              }
              i++;
              break;
            }
            if (b === BACKSLASH) out.ascii('\\\\');
            else if (b === NL) out.ascii('\\n');
            else if (b === 0x0d) out.ascii('\\r');
            else if (b === TAB) out.ascii('\\t');
            else out.byte(b);
            i++;
          }
        } else if (c === 0x4e /* N */ && data.toString('latin1', i, i + 4) === 'NULL') {
          out.ascii('\\N');
          i += 4;
        } else if (c === 0x74 /* t */ && data.toString('latin1', i, i + 4) === 'true') {
          out.byte(0x74);
          i += 4;
        } else if (c === 0x66 /* f */ && data.toString('latin1', i, i + 5) === 'false') {
          out.byte(0x66);
          i += 5;
        } else if (c === MINUS || (c !== undefined && c >= ZERO && c <= NINE)) {
          const s = i;
          if (c === MINUS) i++;
          if (!(data[i]! >= ZERO && data[i]! <= NINE)) refuse('something that is not a literal');
          while (data[i]! >= ZERO && data[i]! <= NINE) i++;
          out.range(data, s, i);
        } else refuse('something that is not a literal');
        col++;
        space();
        if (data[i] === COMMA) {
          i++;
          continue;
        }
        if (data[i] === 0x29 /* ) */) {
          i++;
          break;
        }
        refuse('something that is not a literal');
      }
      if (col !== this.#columns) refuse(`a tuple of ${col} values for ${this.#columns} columns`);
      out.byte(NL);
      starts.push(start);
      lastEnd = i;
      ends.push(i);
      rows++;
    }
    if (exact && rows > 0) {
      // Tuples laid out as `tuple,\ntuple…`: one hash update covers them.
      file.update(data.subarray(first, lastEnd));
      file.update(TUPLE_SEPARATOR);
    } else {
      for (let r = 0; r < rows; r++) {
        file.update(data.subarray(starts[r], ends[r]));
        file.update(TUPLE_SEPARATOR);
      }
    }
    this.rows += rows;
    return { copy: out.buf.subarray(0, out.n), rows };
  }
}

const TUPLE_SEPARATOR = Buffer.from(',\n');
