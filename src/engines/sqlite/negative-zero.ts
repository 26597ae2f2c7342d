import type { LossyValues } from '../engine.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const NEGATIVE_ZERO = Buffer.from('-0.0');

/** What a -0.0 in a REAL column becomes (docs/cross-engine.md, PostgreSQL → SQLite). */
export const NEGATIVE_ZERO_LOSSY = '-0.0 in a REAL column, which SQLite stores as 0.0 (loaded as 0.0)';

/** The lossy values as the error and the notices list them, one line per table, column and kind. */
export function describeLossyValues(found: readonly LossyValues[]): string {
  return found.map((f) => `table ${JSON.stringify(f.table)} column ${JSON.stringify(f.column)}: ${f.count} × ${f.what}; first in row ${f.row}: ${f.example}`).join('\n');
}

/**
 * Finds `-0.0` in the float columns of a PostgreSQL table's rows (ndjson arrays or json objects, as
 * export and restore encode them) on their way into SQLite. SQLite keeps a REAL whose value is integral
 * as an integer in the record of a REAL column, so `-0.0` reads back as `0.0`: its sign cannot be
 * carried, and is reported as a lossy value (a -0.0 inside text or JSON text is not a float and is not
 * counted). {@link check} also gives the batch as the loaded table will read back, `-0.0` written
 * `0.0`, for the read-back digest.
 *
 * Contract: batches of one table, in order, each holding whole rows (a batch's `rows` is not needed).
 */
export class NegativeZeroCheck {
  readonly #table: string;
  readonly #columns: readonly string[];
  readonly #floats: readonly boolean[];
  readonly #objects: boolean;
  readonly #found = new Map<number, LossyValues>();
  /** Rows looked at so far (the 1-based row of an example). */
  #rows = 0;

  /** `floats[i]`: the i-th value of a row is a float column's (`columns` names them). */
  constructor(table: string, columns: readonly string[], floats: readonly boolean[], encoding: 'ndjson' | 'json') {
    this.#table = table;
    this.#columns = columns;
    this.#floats = floats;
    this.#objects = encoding === 'json';
  }

  /** The -0.0 values found so far, one entry per column. */
  get lossy(): LossyValues[] {
    return [...this.#found.values()];
  }

  /** Looks at one batch of whole rows; returns it as the table will read back (the same buffer when it has no -0.0). */
  check(data: Buffer): Buffer {
    if (!this.#floats.includes(true) || data.indexOf(NEGATIVE_ZERO) < 0) {
      this.#rows += countRows(data);
      return data;
    }
    const cuts: number[] = []; // where a value -0.0 starts: its '-' is dropped
    let depth = 0;
    let inString = false;
    let col = 0;
    let start = -1;
    const end = (i: number): void => {
      if (start >= 0 && this.#floats[col] && i - start === 4 && data.compare(NEGATIVE_ZERO, 0, 4, start, i) === 0) {
        cuts.push(start);
        const seen = this.#found.get(col);
        if (seen) seen.count++;
        else this.#found.set(col, { table: this.#table, column: this.#columns[col] ?? `#${col + 1}`, what: NEGATIVE_ZERO_LOSSY, count: 1, example: '-0.0', row: this.#rows + 1 });
      }
      start = -1;
    };
    for (let i = 0; i < data.length; i++) {
      const b = data[i]!;
      if (inString) {
        if (b === BACKSLASH) i++;
        else if (b === QUOTE) inString = false;
        continue;
      }
      if (b === QUOTE) inString = true;
      else if (b === 0x5b || b === 0x7b) {
        // [ or {: a row begins (its first value follows, for arrays), or a nested value ({"$blob":…})
        if (depth++ === 0) {
          col = 0;
          start = this.#objects ? -1 : i + 1;
        }
      } else if (b === 0x5d || b === 0x7d) {
        if (--depth === 0) {
          end(i);
          this.#rows++;
        }
      } else if (depth === 1 && b === COMMA) {
        end(i);
        col++;
        start = this.#objects ? -1 : i + 1;
      } else if (depth === 1 && b === COLON && this.#objects) start = i + 1;
    }
    if (cuts.length === 0) return data;
    const out = Buffer.allocUnsafe(data.length - cuts.length);
    let n = 0;
    let from = 0;
    for (const cut of cuts) {
      n += data.copy(out, n, from, cut);
      from = cut + 1;
    }
    data.copy(out, n, from);
    return out;
  }
}

/** The rows of a batch: its row separators plus one (a row's JSON never holds a raw newline). */
function countRows(data: Buffer): number {
  if (data.length === 0) return 0;
  let n = 1;
  for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, i + 1)) n++;
  return n;
}
