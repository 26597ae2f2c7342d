import type { RowBatch } from '../core/encoding.js';
import { IntegrityError } from '../core/errors.js';

const NEWLINE = 0x0a;

/**
 * A pull reader over a stream of byte chunks, for format readers. It hands out slices of its buffer
 * (no copies for data that arrived in one chunk) and counts lines and bytes for errors and progress.
 */
export class ByteReader {
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #eof = false;
  readonly #source: AsyncIterator<Buffer>;
  /** Lines consumed so far (1-based number of the last line returned). */
  line = 0;
  /** Bytes consumed from the source so far. */
  bytesRead = 0;

  constructor(source: AsyncIterable<Buffer>) {
    this.#source = source[Symbol.asyncIterator]();
  }

  /** Reads one more chunk into the buffer; false at end of input. */
  async fill(): Promise<boolean> {
    if (this.#eof) return false;
    const next = await this.#source.next();
    if (next.done) {
      this.#eof = true;
      return false;
    }
    const chunk = next.value;
    this.bytesRead += chunk.length;
    this.#buf = this.#pos < this.#buf.length ? Buffer.concat([this.#buf.subarray(this.#pos), chunk]) : chunk;
    this.#pos = 0;
    return true;
  }

  /** The unread bytes (valid until the next fill). */
  get view(): Buffer {
    return this.#buf.subarray(this.#pos);
  }

  get eof(): boolean {
    return this.#eof && this.#pos >= this.#buf.length;
  }

  /** Marks `n` bytes of `view` as consumed. */
  skip(n: number): void {
    this.#pos += n;
  }

  /** The next line without its newline, or null at the end. A last line without newline is truncation. */
  async readLine(): Promise<Buffer | null> {
    for (;;) {
      const nl = this.#buf.indexOf(NEWLINE, this.#pos);
      if (nl >= 0) {
        const line = this.#buf.subarray(this.#pos, nl);
        this.#pos = nl + 1;
        this.line++;
        return line;
      }
      if (!(await this.fill())) {
        if (this.#pos < this.#buf.length) {
          throw new IntegrityError('E_TRUNCATED', `the input ends in the middle of line ${this.line + 1}`, {
            hint: 'The file is incomplete; nothing was written to the target.',
          });
        }
        return null;
      }
    }
  }

  /**
   * Up to `max` consecutive whole lines that start with `first`, as one slice (lines joined by their
   * newlines, the last newline consumed but not included); null when the next line does not start with
   * `first`.
   */
  async readLines(first: number, max: number): Promise<RowBatch | null> {
    while (this.#buf.indexOf(NEWLINE, this.#pos) < 0) {
      if (!(await this.fill())) return null; // readLine reports the truncation
    }
    const buf = this.#buf;
    const start = this.#pos;
    if (buf[start] !== first) return null;
    let pos = start;
    let rows = 0;
    let end = start;
    while (rows < max && pos < buf.length && buf[pos] === first) {
      const nl = buf.indexOf(NEWLINE, pos);
      if (nl < 0) break;
      end = nl;
      pos = nl + 1;
      rows++;
    }
    this.#pos = pos;
    this.line += rows;
    return { data: buf.subarray(start, end), rows };
  }
}

/** Adapts a Node readable (or any async iterable of chunks) to Buffers. */
export async function* asBuffers(source: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  for await (const chunk of source) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
}
