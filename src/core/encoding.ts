import { createHash, type Hash } from 'node:crypto';

/**
 * How one row is written as text. Engines produce and consume rows in these encodings natively (SQLite
 * builds them in C), so rows cross the JavaScript side as large buffers, never one value at a time.
 *
 * - `ndjson`: a JSON array of typed values, one line per row (see docs/formats.md).
 * - `json`: a JSON object keyed by column name (the original system's document rows).
 * - `sql`: a parenthesised tuple of SQL literals in the engine's dialect.
 */
export type RowEncoding = 'ndjson' | 'json' | 'sql';

/** What separates two rows of a batch, and follows every row when hashing. */
export const ROW_SEPARATOR: Readonly<Record<RowEncoding, string>> = {
  ndjson: '\n',
  json: ',\n',
  sql: ',\n',
};

/** A run of rows in one encoding: their encodings joined by the encoding's separator, no trailing one. */
export interface RowBatch {
  data: Buffer;
  rows: number;
  /**
   * The batch ends inside a row, which goes on in the next batch: no separator follows it, and `rows`
   * counts only the rows that end in it (a row with a large value comes in several batches).
   */
  partial?: boolean;
  /** The engine hashed this batch for the table digest already (see {@link DigestBuilder}). */
  hashed?: boolean;
  /**
   * On a last batch of no rows, after batches that were all `hashed`: the table digest (hex), as
   * {@link DigestBuilder} defines it. Such a batch carries nothing to write.
   */
  tableSha256?: string;
}

/** Per-table content digest, the same however the rows were batched. */
export interface TableDigest {
  rows: number;
  /** Hex SHA-256 over every row's encoding followed by the encoding's separator, in primary-key order. */
  sha256: string;
}

/**
 * Accumulates a table digest from batches. A table's digest is defined over rows, not batches, so two
 * sides that batch differently still agree.
 */
export class DigestBuilder {
  readonly #hash: Hash = createHash('sha256');
  readonly #separator: Buffer;
  #rows = 0;
  /** Rows of batches the engine hashed, and the digest it gave for them. */
  #hashedRows = 0;
  #given: string | undefined;

  constructor(encoding: RowEncoding) {
    this.#separator = Buffer.from(ROW_SEPARATOR[encoding]);
  }

  add(batch: RowBatch): void {
    if (batch.tableSha256 !== undefined) this.#given = batch.tableSha256;
    if (batch.rows === 0 && !batch.partial) return;
    this.#rows += batch.rows;
    if (batch.hashed) {
      this.#hashedRows += batch.rows;
      return;
    }
    this.#hash.update(batch.data);
    if (!batch.partial) this.#hash.update(this.#separator);
  }

  finish(): TableDigest {
    if (this.#hashedRows > 0 || this.#given !== undefined) {
      // The engine hashed every batch (it does all of a table's or none): its digest is the table's.
      if (this.#hashedRows !== this.#rows || this.#given === undefined) throw new Error('DigestBuilder: batches hashed by the engine without its digest');
      return { rows: this.#rows, sha256: this.#given };
    }
    return { rows: this.#rows, sha256: this.#hash.digest('hex') };
  }
}
