import type { RowBatch } from '../../core/encoding.js';
import { encodeFloat, unescapeCopy, type ValueKind } from './row-codec.js';

const TAB = 0x09;
const NL = 0x0a;
const BACKSLASH = 0x5c;
const QUOTE = 0x22;
const COMMA = 0x2c;
const N_UPPER = 0x4e;

const KIND_CODES: Record<ValueKind, number> = { int: 0, float: 1, bool: 2, bytea: 3, text: 4 };

/**
 * Encodes `COPY … TO STDOUT` text output (bytes, in chunks as they come) into scriptorium's typed row
 * encodings (ndjson arrays, json objects) in one pass over the bytes: integers and text without
 * escapes are copied as byte ranges, bytea's hex uppercased in place, and only floats and escaped text
 * become JavaScript strings. Rows go out in batches of about `batchRows` rows or `batchBytes` bytes.
 * The output is byte for byte what row-codec.ts's `encodeCopyRow` gives.
 */
export class CopyTextEncoder {
  readonly #kinds: Uint8Array;
  readonly #keys: Buffer[] | null;
  readonly #separator: Buffer;
  readonly #batchRows: number;
  readonly #batchBytes: number;
  #rest: Buffer = Buffer.alloc(0);
  #out: Buffer;
  #n = 0;
  #rows = 0;

  constructor(kinds: readonly ValueKind[], options: { keys: readonly string[] | null; separator: string; batchRows: number; batchBytes: number }) {
    this.#kinds = Uint8Array.from(kinds.map((k) => KIND_CODES[k]));
    this.#keys = options.keys ? options.keys.map((k, i) => Buffer.from(`${i === 0 ? '{' : ','}${JSON.stringify(k)}:`)) : null;
    this.#separator = Buffer.from(options.separator);
    this.#batchRows = options.batchRows;
    this.#batchBytes = options.batchBytes;
    this.#out = Buffer.allocUnsafe(options.batchBytes + (64 << 10));
  }

  #need(extra: number): void {
    if (this.#n + extra <= this.#out.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.#out.length * 2, this.#n + extra + 1024));
    this.#out.copy(bigger, 0, 0, this.#n);
    this.#out = bigger;
  }

  /** Copies `buf[start, end)` to the output; short ranges (most values) by a loop, cheaper than Buffer#copy's call. */
  #range(buf: Buffer, start: number, end: number): void {
    const len = end - start;
    this.#need(len);
    if (len > 48) buf.copy(this.#out, this.#n, start, end);
    else {
      const out = this.#out;
      let n = this.#n;
      for (let k = start; k < end; k++) out[n++] = buf[k]!;
    }
    this.#n += len;
  }

  #ascii(s: string): void {
    this.#need(s.length);
    this.#n += this.#out.write(s, this.#n, 'latin1');
  }

  #take(): RowBatch {
    const batch = { data: this.#out.subarray(0, this.#n), rows: this.#rows };
    this.#out = Buffer.allocUnsafe(this.#batchBytes + (64 << 10));
    this.#n = 0;
    this.#rows = 0;
    return batch;
  }

  /** Takes one chunk of COPY output; returns the batches it completes. */
  push(chunk: Buffer): RowBatch[] {
    const buf = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : chunk;
    const batches: RowBatch[] = [];
    const end = buf.lastIndexOf(NL);
    if (end < 0) {
      this.#rest = Buffer.from(buf);
      return batches;
    }
    let i = 0;
    while (i <= end) {
      i = this.#row(buf, i);
      if (this.#rows >= this.#batchRows || this.#n >= this.#batchBytes) batches.push(this.#take());
    }
    this.#rest = end + 1 < buf.length ? Buffer.from(buf.subarray(end + 1)) : Buffer.alloc(0);
    return batches;
  }

  /** The last batch; throws when the output ended inside a row. */
  finish(): RowBatch | undefined {
    if (this.#rest.length > 0) throw new Error('postgres: COPY output ended inside a row');
    return this.#rows > 0 ? this.#take() : undefined;
  }

  /** Encodes the row that starts at `i` (it ends with a newline at or before the buffer's last one); returns where the next starts. */
  #row(buf: Buffer, i: number): number {
    const kinds = this.#kinds;
    const keys = this.#keys;
    const columns = kinds.length;
    if (this.#rows > 0) {
      this.#range(this.#separator, 0, this.#separator.length);
    }
    if (!keys) {
      this.#need(1);
      this.#out[this.#n++] = 0x5b; // [
    }
    for (let col = 0; col < columns; col++) {
      if (keys) {
        const key = keys[col]!;
        this.#range(key, 0, key.length);
      } else if (col > 0) {
        this.#need(1);
        this.#out[this.#n++] = COMMA;
      }
      // The field: up to the next tab or newline; text fields note what needs the slow path.
      let j = i;
      let plain = true;
      for (;;) {
        const b = buf[j]!;
        if (b === TAB || b === NL) break;
        if (b === BACKSLASH || b === QUOTE || b < 0x20) plain = false;
        j++;
      }
      const last = buf[j] === NL;
      if (last !== (col === columns - 1)) throw new Error(`postgres: COPY gave a row of another number of values than the ${columns} columns`);
      if (j - i === 2 && buf[i] === BACKSLASH && buf[i + 1] === N_UPPER) this.#ascii('null');
      else {
        switch (kinds[col]) {
          case 0: // int
            this.#range(buf, i, j);
            break;
          case 1: {
            // float
            const s = buf.toString('latin1', i, j);
            this.#ascii(encodeFloat(Number(s)));
            break;
          }
          case 2: // bool
            this.#ascii(buf[i] === 0x74 ? 'true' : 'false');
            break;
          case 3: {
            // bytea: \\x and hex (the backslash escaped by COPY)
            const from = i + 3;
            this.#ascii('{"$blob":"');
            this.#need(j - from + 2);
            const out = this.#out;
            let n = this.#n;
            for (let k = from; k < j; k++) {
              const b = buf[k]!;
              out[n++] = b >= 0x61 ? b - 0x20 : b;
            }
            out[n++] = QUOTE;
            out[n++] = 0x7d; // }
            this.#n = n;
            break;
          }
          default:
            if (plain) {
              this.#need(j - i + 2);
              this.#out[this.#n++] = QUOTE;
              this.#range(buf, i, j);
              this.#out[this.#n++] = QUOTE;
            } else {
              const s = JSON.stringify(unescapeCopy(buf.toString('utf8', i, j)));
              this.#need(s.length * 3);
              this.#n += this.#out.write(s, this.#n, 'utf8');
            }
        }
      }
      i = j + 1;
    }
    this.#need(1);
    this.#out[this.#n++] = keys ? 0x7d : 0x5d; // } or ]
    this.#rows++;
    return i;
  }
}
