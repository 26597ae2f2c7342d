import { IntegrityError, ScriptoriumError } from '../../core/errors.js';

/**
 * How one PostgreSQL column's values are written in scriptorium's typed row encodings (ndjson arrays and
 * json objects; docs/postgres.md). The value kinds are those SQLite's encoding already has, and
 * everything else is the value's PostgreSQL text form as a JSON string:
 *
 * - `int` (int2, int4, int8 and domains over them): a JSON integer, all digits;
 * - `float` (float4, float8): a JSON number that always has a `.` or an exponent, shortest round-trip
 *   digits, `-0.0`, `9.0e+999` / `-9.0e+999` for ±Infinity, and the string `"NaN"`;
 * - `bool`: `true` / `false`;
 * - `bytea`: `{"$blob":"HEX"}` as SQLite's BLOBs;
 * - `text`: every other type (numeric, text, dates and times, json, arrays, enums, …), its text output
 *   under the dump session settings, as a JSON string.
 */
export type ValueKind = 'int' | 'float' | 'bool' | 'bytea' | 'text';

/** The kind of a base type (by its oid); domains are resolved to their base type before. */
export function kindOfType(oid: number): ValueKind {
  switch (oid) {
    case 20:
    case 21:
    case 23:
      return 'int';
    case 700:
    case 701:
      return 'float';
    case 16:
      return 'bool';
    case 17:
      return 'bytea';
    default:
      return 'text';
  }
}

/** A float in the encoding: always a `.` or an exponent, so readers (SQLite's too) keep it a REAL. */
export function encodeFloat(x: number): string {
  if (Number.isNaN(x)) return '"NaN"';
  if (x === Infinity) return '9.0e+999';
  if (x === -Infinity) return '-9.0e+999';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const s = String(x);
  const e = s.indexOf('e');
  if (e < 0) return s.includes('.') ? s : `${s}.0`;
  const mantissa = s.slice(0, e);
  return mantissa.includes('.') ? s : `${mantissa}.0${s.slice(e)}`;
}

/** One value from PostgreSQL's text output (as COPY writes it, unescaped) in the encoding. */
export function encodeText(kind: ValueKind, text: string): string {
  switch (kind) {
    case 'int':
      return text;
    case 'float':
      return encodeFloat(Number(text));
    case 'bool':
      return text === 't' ? 'true' : 'false';
    case 'bytea':
      return `{"$blob":"${text.slice(2).toUpperCase()}"}`;
    default:
      return JSON.stringify(text);
  }
}

const COPY_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

/** A field of COPY's text format, unescaped (`\N` is NULL and is handled by the caller). */
export function unescapeCopy(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))/g, (_m, octal: string | undefined, hex: string | undefined, c: string | undefined) => {
    if (octal !== undefined) return String.fromCharCode(parseInt(octal, 8));
    if (hex !== undefined) return String.fromCharCode(parseInt(hex, 16));
    return COPY_ESCAPES[c!] ?? c!;
  });
}

/** A value for COPY's text format: backslash, newline, carriage return and tab escaped. */
export function escapeCopy(text: string): string {
  return /[\\\n\r\t]/.test(text) ? text.replace(/[\\\n\r\t]/g, (c) => (c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t')) : text;
}

/** One row of COPY text output (no line end) in the encoding: a JSON array, or with `keys` a JSON object. */
export function encodeCopyRow(line: string, kinds: readonly ValueKind[], keys: readonly string[] | null): string {
  const fields = line.split('\t');
  if (fields.length !== kinds.length) throw new Error(`postgres: COPY gave ${fields.length} values for ${kinds.length} columns`);
  let out = keys ? '{' : '[';
  for (let i = 0; i < fields.length; i++) {
    if (i > 0) out += ',';
    if (keys) out += `${keys[i]}:`;
    const f = fields[i]!;
    out += f === '\\N' ? 'null' : encodeText(kinds[i]!, unescapeCopy(f));
  }
  return out + (keys ? '}' : ']');
}

/** A value of a row in a file, as the tokenizer found it. */
export type Token =
  | { t: 'null' }
  | { t: 'bool'; v: boolean }
  | { t: 'num'; v: string }
  | { t: 'str'; v: string }
  | { t: 'blob'; v: string };

const BLOB = /\{\s*"\$blob"\s*:\s*"([0-9A-Fa-f]*)"\s*\}/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?/y;

/**
 * Reads rows in the typed encoding from `text` (ndjson lines, or json row objects separated by commas):
 * calls `row(values, raw)` for each, with the row's exact text for the file digest. Object rows must
 * have exactly `columns`' keys, in order. Throws E_CORRUPT at the first thing that is not such a row.
 */
export function parseRows(text: string, columns: readonly string[], objects: boolean, row: (values: Token[], raw: string) => void): number {
  let i = 0;
  let count = 0;
  const n = text.length;
  const fail = (what: string): never => {
    throw new IntegrityError('E_CORRUPT', `import: a row is damaged (${what}, near ${JSON.stringify(text.slice(i, i + 40))})`, {
      hint: 'The file is damaged or was edited; nothing was written to the target.',
    });
  };
  const space = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const string = (): string => {
    const start = i;
    let j = i + 1;
    let escaped = false;
    for (;;) {
      const q = text.indexOf('"', j);
      if (q < 0) fail('an unterminated string');
      let b = q - 1;
      while (text[b] === '\\') b--;
      if ((q - 1 - b) % 2 === 0) {
        i = q + 1;
        break;
      }
      escaped = true;
      j = q + 1;
    }
    const raw = text.slice(start, i);
    if (!escaped && !raw.includes('\\')) return raw.slice(1, -1);
    try {
      return JSON.parse(raw) as string;
    } catch {
      return fail('a bad string escape');
    }
  };
  const value = (): Token => {
    const c = text[i];
    if (c === '"') return { t: 'str', v: string() };
    if (c === 'n' && text.startsWith('null', i)) return (i += 4), { t: 'null' };
    if (c === 't' && text.startsWith('true', i)) return (i += 4), { t: 'bool', v: true };
    if (c === 'f' && text.startsWith('false', i)) return (i += 5), { t: 'bool', v: false };
    if (c === '{') {
      BLOB.lastIndex = i;
      const m = BLOB.exec(text);
      if (!m || m[1]!.length % 2 !== 0) return fail('an object that is not {"$blob":"HEX"}');
      i = BLOB.lastIndex;
      return { t: 'blob', v: m[1]!.toUpperCase() };
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail('not a value');
    i = NUMBER.lastIndex;
    return { t: 'num', v: m[0] };
  };
  space();
  while (i < n) {
    if (count > 0 && objects) {
      if (text[i] !== ',') fail('rows not separated by a comma');
      i++;
      space();
    }
    const start = i;
    const values: Token[] = [];
    if (text[i] !== (objects ? '{' : '[')) fail(objects ? 'a row that is not an object' : 'a row that is not an array');
    i++;
    space();
    const close = objects ? '}' : ']';
    if (text[i] === close) i++;
    else {
      for (;;) {
        if (objects) {
          if (text[i] !== '"') fail('a member without a name');
          const key = string();
          if (key !== columns[values.length]) fail(`member ${JSON.stringify(key)} where column ${JSON.stringify(columns[values.length])} belongs`);
          space();
          if (text[i] !== ':') fail('a member without a value');
          i++;
          space();
        }
        values.push(value());
        space();
        if (text[i] === ',') {
          i++;
          space();
          continue;
        }
        if (text[i] === close) {
          i++;
          break;
        }
        fail('a row that does not end');
      }
    }
    if (values.length !== columns.length) fail(`${values.length} values for ${columns.length} columns`);
    row(values, text.slice(start, i));
    count++;
    space();
  }
  return count;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why a value cannot go into a column of this kind, for the error message; undefined when it can. */
function refuse(kind: ValueKind, token: Token): string | undefined {
  if (token.t === 'blob' && kind !== 'bytea') return 'a BLOB';
  if (token.t === 'str' && token.v.includes('\u0000')) return 'text with NUL (U+0000), which PostgreSQL text cannot hold';
  if (token.t === 'str' && LONE_SURROGATE.test(token.v)) return 'text with an unpaired surrogate (not Unicode)';
  return undefined;
}

/**
 * One value for COPY FROM (text format, escaped), and its canonical encoding: what the column must give
 * back when it is read, so the loaded table is compared with the rows that were sent.
 */
export function copyValue(kind: ValueKind, token: Token, where: () => string): { copy: string; canonical: string } {
  const problem = refuse(kind, token);
  if (problem !== undefined) {
    throw new ScriptoriumError('E_UNSUPPORTED', `import: ${where()} holds ${problem}`, {
      hint: 'PostgreSQL cannot store this value in this column as it is; nothing was written to the target.',
    });
  }
  switch (token.t) {
    case 'null':
      return { copy: '\\N', canonical: 'null' };
    case 'bool':
      return { copy: token.v ? 't' : 'f', canonical: kind === 'bool' ? String(token.v) : JSON.stringify(String(token.v)) };
    case 'blob':
      return { copy: `\\\\x${token.v}`, canonical: `{"$blob":"${token.v}"}` };
    case 'num': {
      if (kind === 'float') {
        const copy = token.v === '9.0e+999' ? 'Infinity' : token.v === '-9.0e+999' ? '-Infinity' : token.v;
        return { copy, canonical: encodeFloat(Number(copy)) };
      }
      if (kind === 'int') return { copy: token.v, canonical: /^-?\d+$/.test(token.v) ? BigInt(token.v).toString() : token.v };
      if (kind === 'bool') return { copy: token.v, canonical: token.v === '0' ? 'false' : token.v === '1' ? 'true' : token.v };
      return { copy: token.v, canonical: JSON.stringify(token.v) };
    }
    case 'str': {
      const copy = escapeCopy(token.v);
      if (kind === 'text') return { copy, canonical: JSON.stringify(token.v) };
      if (kind === 'float') return { copy, canonical: token.v === 'NaN' ? '"NaN"' : encodeFloat(Number(token.v)) };
      if (kind === 'bytea') return { copy: `\\\\x${Buffer.from(token.v).toString('hex')}`, canonical: JSON.stringify(token.v) };
      return { copy, canonical: token.v };
    }
  }
}

/** One value from PostgreSQL's text output as a SQL literal (standard_conforming_strings on). */
export function sqlLiteral(kind: ValueKind, text: string): string {
  switch (kind) {
    case 'int':
      return text;
    case 'bool':
      return text === 't' ? 'true' : 'false';
    default:
      // Floats too: a bare -0.0 or 1e-320 would be a numeric constant first, losing the sign or digits;
      // a quoted literal goes straight to the column's own input function.
      return `'${text.replace(/'/g, "''")}'`;
  }
}

/** One row of COPY text output as a parenthesised tuple of SQL literals. */
export function sqlCopyRow(line: string, kinds: readonly ValueKind[]): string {
  const fields = line.split('\t');
  if (fields.length !== kinds.length) throw new Error(`postgres: COPY gave ${fields.length} values for ${kinds.length} columns`);
  let out = '(';
  for (let i = 0; i < fields.length; i++) {
    if (i > 0) out += ',';
    const f = fields[i]!;
    out += f === '\\N' ? 'NULL' : sqlLiteral(kinds[i]!, unescapeCopy(f));
  }
  return `${out})`;
}
