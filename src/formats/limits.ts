/**
 * The bounds an import holds input to, derived from what SQLite itself can hold, in one place so that
 * the readers (this side) and the encoders and loaders (the values side) agree on one contract.
 *
 * A reader holds at most one *unit* of input in memory at a time: one line (ndjson), one value or row
 * object (json), one statement, one VALUES tuple or one comment (sql). A unit longer than any legal
 * export can produce is refused at once with E_CORRUPT, so a hostile file (a few KB of zstd that expand
 * to a 5 GiB line) cannot make memory grow without limit.
 */
import { constants } from 'node:buffer';
import { IntegrityError, ScriptoriumError } from '../core/errors.js';

/** SQLite's SQLITE_MAX_LENGTH (1e9 by default): the longest string or BLOB, and the longest row record. */
export const SQLITE_MAX_LENGTH = 1_000_000_000;

/** SQLite's default SQLITE_MAX_COLUMN: the most columns a table (so a row) can have. */
export const SQLITE_MAX_COLUMN = 2000;

/**
 * Framing one row's encoding adds to its record bytes, at most: per column a separator, quotes, `null`
 * for a one-byte NULL, 24 characters for an 8-byte REAL, `{"$blob":""}` around a BLOB (all under 64
 * bytes), plus, in json rows, the column names as keys (16 MiB covers 2,000 names of 8 KB each).
 */
export const ROW_FRAMING_BYTES = 16 << 20;

/**
 * The longest text one legal row can take in any format scriptorium reads, not counting escapes: the
 * record is at most SQLITE_MAX_LENGTH bytes; hex doubles a BLOB (`X'…'`, `{"$blob":"…"}`), SQL quoting
 * doubles a quote and `CAST(X'…' AS TEXT)` doubles text, and nothing else we or `sqlite3 .dump` write
 * expands more than twice, except escapes (below). Also the bound on one sql statement or VALUES tuple:
 * a statement that is not an INSERT is schema text, which SQLite bounds by SQLITE_MAX_SQL_LENGTH (1e9).
 */
export const MAX_ROW_TEXT_BYTES = 2 * SQLITE_MAX_LENGTH + ROW_FRAMING_BYTES;

/**
 * The expansion escapes add: JSON's `\u0001` (control characters in ndjson and json) and unistr's
 * `\u0001` (`sqlite3 .dump`) are 6 bytes for one, 4 bytes more than the doubling already allowed for.
 * Every such escape starts with a backslash, so a unit may be this many bytes longer per backslash in it.
 */
export const BYTES_PER_ESCAPE = 4;

/**
 * The environment variable that lowers (or raises) the bound, in bytes; for tests, which cannot afford
 * to decompress gigabytes to reach the default, and for users who want a tighter limit. Escapes add to
 * it as they add to the default.
 */
export const MAX_LINE_ENV = 'SCRIPTORIUM_MAX_LINE_BYTES';

/** The bound on one unit before escapes are counted: {@link MAX_ROW_TEXT_BYTES}, or {@link MAX_LINE_ENV}. */
export function maxUnitBytes(env: NodeJS.ProcessEnv = process.env): number {
  const set = env[MAX_LINE_ENV];
  if (set === undefined || set === '') return MAX_ROW_TEXT_BYTES;
  const n = Number(set);
  if (!Number.isSafeInteger(n) || n < 1024) {
    throw new ScriptoriumError('E_USAGE', `${MAX_LINE_ENV}=${set} is not a number of bytes (at least 1024)`, {
      hint: `Unset ${MAX_LINE_ENV} to use the default (${MAX_ROW_TEXT_BYTES} bytes, what the longest legal row takes).`,
    });
  }
  return n;
}

/** The most bytes one Buffer can hold on this Node.js (4 GiB on Node 20). */
export const MAX_BUFFER_BYTES = constants.MAX_LENGTH;

/** The error for a unit (`what`, e.g. "line 3") longer than any legal row. */
export function unitTooLong(what: string, bytes: number): IntegrityError {
  return new IntegrityError('E_CORRUPT', `${what} is longer than any row SQLite can hold (more than ${bytes} bytes without an end)`, {
    hint: 'The file is damaged or was not written by scriptorium or sqlite3 .dump; nothing was written to the target.' +
      ` (The bound is set by ${MAX_LINE_ENV} when that is set.)`,
  });
}

/** The error for a unit that may be legal but is longer than one Buffer of this Node.js can hold. */
export function unitTooBigForNode(what: string): ScriptoriumError {
  return new ScriptoriumError('E_UNSUPPORTED', `${what} is longer than one Node.js buffer can hold (${MAX_BUFFER_BYTES} bytes)`, {
    hint: 'A row this long (values near SQLite\'s 1e9-byte limit written with escapes) cannot be imported by this Node.js; nothing was written to the target.',
  });
}
