import type { RowBatch } from '../core/encoding.js';
import { IntegrityError } from '../core/errors.js';
import { collectAll } from '../core/memory.js';
import { BYTES_PER_ESCAPE, MAX_BUFFER_BYTES, maxUnitBytes, unitTooBigForNode, unitTooLong } from './limits.js';

const NEWLINE = 0x0a;
const BACKSLASH = 0x5c;

/** Where a ByteReader's bytes come from: `read` copies up to `length` bytes into `into` at `offset`. */
export interface ByteSource {
  /** Bytes written (at least 1), or 0 at the end of the input. */
  read(into: Buffer, offset: number, length: number): Promise<number>;
}

/** Bytes the reader's buffer starts with (and shrinks back to after a very long line). */
const INITIAL_BYTES = 512 << 10;

/**
 * A dropped buffer this large is freed at once by a full collection (a few ms, once per doubling):
 * V8 would keep every size a growing unit went through until its heap grows, 2x the unit in all.
 */
const COLLECT_BYTES = 32 << 20;

/** A buffer up to this size is kept after a long unit (pieces of streamed units are a few MB). */
const KEEP_BYTES = 8 << 20;

/**
 * A pull reader over a source of bytes, for format readers. It reads into one buffer of its own, which
 * it reuses (unread bytes move to its front on every fill), so streaming a file leaves no garbage behind.
 * It hands out views of that buffer, valid until the next fill, and counts lines and bytes for errors
 * and progress.
 *
 * Contract with format readers: a reader calls {@link fill} only when the unread bytes are one
 * incomplete unit (a line, a value, a statement, a tuple): everything complete before it has been
 * consumed. So the unread bytes are what must be held, and fill refuses to hold more than the bound of
 * src/formats/limits.ts (E_CORRUPT, named by {@link describe}). Each fill reads until the buffer is
 * full, and the buffer doubles when most of it is one unit: a unit that grows is rescanned by its
 * reader at most once per doubling, so time stays linear in its length whatever the source's chunks.
 */
export class ByteReader {
  #buf: Buffer;
  #pos = 0;
  #end = 0;
  #eof = false;
  /** A large buffer was dropped: collect it once the caller, which may still hold a view of it, waits. */
  #collect = false;
  /** Bytes after #pos already searched for a newline without finding one. */
  #scanned = 0;
  readonly #source: ByteSource;
  readonly #initial: number;
  readonly #maxUnit: number;
  /** Backslashes counted in the unit that starts at stream offset #escUnit, up to stream offset #escTo. */
  #escUnit = -1;
  #escTo = 0;
  #escapes = 0;
  /** Lines consumed so far (1-based number of the last line returned). */
  line = 0;
  /** Bytes read from the source so far. */
  bytesRead = 0;
  /** Names the unit being read, for the error when it is too long (format readers set their own). */
  describe: () => string = () => `line ${this.line + 1}`;

  /**
   * @param initialBytes the buffer's size to start with (and to shrink back to after a long unit)
   * @param maxUnit the longest unit held before escapes are counted (limits.ts: maxUnitBytes)
   */
  constructor(source: ByteSource | AsyncIterable<Buffer>, initialBytes = INITIAL_BYTES, maxUnit = maxUnitBytes()) {
    // A Node readable has a read() method of its own: anything iterable is read as chunks.
    this.#source = Symbol.asyncIterator in source ? iterableSource(source) : source;
    this.#initial = initialBytes;
    this.#maxUnit = maxUnit;
    this.#buf = Buffer.allocUnsafe(initialBytes);
  }

  /**
   * Reads more bytes after the unread ones, until the buffer is full; false at the end of input. Views
   * handed out before are invalid afterwards (the buffer is reused). Throws E_CORRUPT when the unread
   * bytes (one unit, by the contract above) are already longer than any legal unit.
   */
  async fill(): Promise<boolean> {
    if (this.#eof) return false;
    const unread = this.#end - this.#pos;
    const limit = unread > this.#maxUnit ? this.#unitLimit(unread) : this.#maxUnit;
    if (this.#buf.length > KEEP_BYTES && unread < this.#initial / 2) {
      // A long unit made the buffer grow: give the memory back once it has been read. (Not a buffer of
      // a few MB, the size a streamed unit's pieces need: shrinking it between pieces made a sql file's
      // long INSERT grow it back 32 times for one 60 MB value, 240 MB of garbage, ~30 MB of it still
      // uncollected when SQLite built the row.)
      const small = Buffer.allocUnsafe(this.#initial);
      this.#buf.copy(small, 0, this.#pos, this.#end);
      this.#replace(small);
    } else if (unread > this.#buf.length / 2) {
      // Most of the buffer is one incomplete unit: make room for the rest of it, doubling, but near the
      // bound straight to one byte past it (reading that byte is what proves the unit too long; a
      // doubling that lands on the bound would cost one more copy of it all for that byte). When
      // escapes moved the bound just past the unit, grow by an eighth instead of by a few bytes a copy:
      // that may read past the bound, so readLine and readLines check the lines they return.
      const doubled = this.#buf.length * 2;
      const size = Math.min(doubled >= limit ? Math.max(limit + 1, unread + (unread >> 3)) : doubled, MAX_BUFFER_BYTES);
      if (size <= unread) throw unitTooBigForNode(this.describe());
      const big = Buffer.allocUnsafe(size);
      this.#buf.copy(big, 0, this.#pos, this.#end);
      this.#replace(big);
    } else if (this.#pos > 0) {
      this.#buf.copyWithin(0, this.#pos, this.#end);
    }
    this.#pos = 0;
    this.#end = unread;
    let got = 0;
    while (this.#end < this.#buf.length) {
      const n = await this.#source.read(this.#buf, this.#end, this.#buf.length - this.#end);
      if (this.#collect) {
        // Now the format reader's frame is suspended, and its views of the old buffer are dead.
        this.#collect = false;
        collectAll();
      }
      if (n === 0) {
        this.#eof = true;
        break;
      }
      this.#end += n;
      this.bytesRead += n;
      got += n;
    }
    return got > 0;
  }

  #replace(buf: Buffer): void {
    if (this.#buf.length >= COLLECT_BYTES) this.#collect = true;
    this.#buf = buf;
  }

  /**
   * The bound for the unit that starts the `unread` bytes and is `length` of them: the base bound plus
   * what its backslashes may expand (counted once per byte: the count carries over while the same
   * unit grows). Throws when the unit is past it.
   */
  #unitLimit(unread: number, length = unread): number {
    const unit = this.bytesRead - unread;
    if (unit !== this.#escUnit) {
      this.#escUnit = unit;
      this.#escTo = unit;
      this.#escapes = 0;
    }
    // indexOf, not a loop over bytes: units this long have offsets past V8's small integers.
    const rest = this.#buf.subarray(this.#pos + (this.#escTo - unit), this.#pos + length);
    for (let i = rest.indexOf(BACKSLASH); i >= 0; i = rest.indexOf(BACKSLASH, i + 1)) this.#escapes++;
    this.#escTo = unit + length;
    const limit = this.#maxUnit + BYTES_PER_ESCAPE * this.#escapes;
    if (length > limit) throw unitTooLong(this.describe(), limit);
    return limit;
  }

  /** Index of the next newline in the unread bytes, or -1; bytes searched before are not searched again. */
  #newline(): number {
    const from = this.#pos + this.#scanned;
    const at = this.#buf.subarray(from, this.#end).indexOf(NEWLINE);
    if (at < 0) {
      this.#scanned = this.#end - this.#pos;
      return -1;
    }
    return from + at;
  }

  /** The unread bytes (valid until the next fill). */
  get view(): Buffer {
    return this.#buf.subarray(this.#pos, this.#end);
  }

  get eof(): boolean {
    return this.#eof && this.#pos >= this.#end;
  }

  /** Marks `n` bytes of `view` as consumed. */
  skip(n: number): void {
    this.#pos += n;
    this.#scanned = Math.max(0, this.#scanned - n);
  }

  /** The next line without its newline (valid until the next fill), or null at the end. A last line without newline is truncation. */
  async readLine(): Promise<Buffer | null> {
    for (;;) {
      const nl = this.#newline();
      if (nl >= 0) {
        // The last growth may overshoot the bound (by an eighth, where escapes move it): check the line.
        if (nl - this.#pos > this.#maxUnit) this.#unitLimit(this.#end - this.#pos, nl - this.#pos);
        const line = this.#buf.subarray(this.#pos, nl);
        this.#pos = nl + 1;
        this.#scanned = 0;
        this.line++;
        return line;
      }
      if (!(await this.fill())) {
        if (this.#pos < this.#end) {
          throw new IntegrityError('E_TRUNCATED', `the input ends in the middle of line ${this.line + 1}`, {
            hint: 'The file is incomplete; nothing was written to the target.',
          });
        }
        return null;
      }
    }
  }

  /**
   * For a unit read in pieces (a reader's own, see {@link linePieces}): a function to call with each
   * piece in order, which throws E_CORRUPT (as {@link fill} does) once the pieces are longer than any
   * legal unit, escapes counted.
   */
  unitBound(): (piece: Buffer) => void {
    let length = 0;
    let escapes = 0;
    return (piece) => {
      length += piece.length;
      for (let i = piece.indexOf(BACKSLASH); i >= 0; i = piece.indexOf(BACKSLASH, i + 1)) escapes++;
      const limit = this.#maxUnit + BYTES_PER_ESCAPE * escapes;
      if (length > limit) throw unitTooLong(this.describe(), limit);
    };
  }

  /**
   * The next line in pieces, without its newline (each piece a view valid until the next is asked
   * for), and the newline consumed after the last: for lines too long to hold (a row with a large
   * value), so that memory stays at the reader's buffer whatever the line's length. The line is held
   * to the same bound as any unit (E_CORRUPT past it); its end missing is E_TRUNCATED. Iterate it to
   * its end before reading anything else.
   */
  async *linePieces(): AsyncGenerator<Buffer> {
    const account = this.unitBound();
    for (;;) {
      const nl = this.#newline();
      if (nl >= 0) {
        const piece = this.#buf.subarray(this.#pos, nl);
        account(piece);
        this.#pos = nl + 1;
        this.#scanned = 0;
        this.line++;
        if (piece.length > 0) yield piece;
        return;
      }
      if (this.#end > this.#pos) {
        const piece = this.#buf.subarray(this.#pos, Math.min(this.#end, this.#pos + LINE_PIECE_BYTES));
        account(piece);
        this.skip(piece.length);
        yield piece;
        continue;
      }
      if (this.#buf.length > LINE_PIECE_BYTES) {
        // Give back what the line's start grew the buffer to: nothing of it is held any more.
        this.#replace(Buffer.allocUnsafe(Math.max(this.#initial, LINE_PIECE_BYTES)));
        this.#pos = this.#end = 0;
      }
      if (!(await this.fill())) {
        throw new IntegrityError('E_TRUNCATED', `the input ends in the middle of line ${this.line + 1}`, {
          hint: 'The file is incomplete; nothing was written to the target.',
        });
      }
    }
  }

  /**
   * Up to `max` consecutive whole lines that start with `first`, as one slice (lines joined by their
   * newlines, the last newline consumed but not included; valid until the next fill); null when the
   * next line does not start with `first`; `'long'` when the next line starts with `first` and is at
   * least `streamAt` bytes long (the caller reads it with {@link linePieces}).
   */
  async readLines(first: number, max: number, streamAt = Infinity): Promise<RowBatch | null | 'long'> {
    while (this.#newline() < 0) {
      // A line this long is not held whole: its reader takes it in pieces (linePieces).
      if (this.#end - this.#pos >= streamAt && this.#buf[this.#pos] === first) return 'long';
      if (!(await this.fill())) return null; // readLine reports the truncation
    }
    const buf = this.#buf.subarray(0, this.#end); // searches stop at the unread bytes' end
    const start = this.#pos;
    if (buf[start] !== first) return null;
    const limit = this.#end;
    let pos = start;
    let rows = 0;
    let end = start;
    while (rows < max && pos < limit && buf[pos] === first) {
      const nl = buf.indexOf(NEWLINE, pos);
      if (nl < 0 || nl >= limit) break;
      if (nl - pos > this.#maxUnit) {
        this.#pos = pos; // the check names and measures this line
        this.line += rows;
        this.#unitLimit(limit - pos, nl - pos);
        this.line -= rows;
        this.#pos = start;
      }
      end = nl;
      pos = nl + 1;
      rows++;
    }
    this.#pos = pos;
    this.#scanned = 0;
    this.line += rows;
    return { data: buf.subarray(start, end), rows };
  }
}


/**
 * Bytes of a line handed out per piece by {@link ByteReader.linePieces} (its buffer stays this size).
 */
const LINE_PIECE_BYTES = 4 << 20;
/** A source over an async iterable of chunks (a Node readable, a decompressor), copying them out. */
export function iterableSource(source: AsyncIterable<Buffer | string>): ByteSource {
  const it = source[Symbol.asyncIterator]();
  let chunk: Buffer = Buffer.alloc(0);
  let at = 0;
  return {
    async read(into, offset, length) {
      while (at >= chunk.length) {
        const next = await it.next();
        if (next.done) return 0;
        chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
        at = 0;
      }
      const n = chunk.copy(into, offset, at, Math.min(chunk.length, at + length));
      at += n;
      return n;
    },
  };
}

/** A source that replays `head` (bytes already read from `rest`) before the rest. */
export function prefixedSource(head: Buffer, rest: ByteSource): ByteSource {
  let at = 0;
  return {
    async read(into, offset, length) {
      if (at < head.length) {
        const n = head.copy(into, offset, at, Math.min(head.length, at + length));
        at += n;
        return n;
      }
      return rest.read(into, offset, length);
    },
  };
}

/** Reads up to `n` bytes from the start of `source` (fewer only at its end). */
export async function readHead(source: ByteSource, n: number): Promise<Buffer> {
  const head = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const k = await source.read(head, got, n - got);
    if (k === 0) break;
    got += k;
  }
  return head.subarray(0, got);
}
