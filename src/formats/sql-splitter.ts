/**
 * Splits SQL into statements the way SQLite's tokenizer would: semicolons inside strings, quoted
 * identifiers and comments do not end a statement, and a CREATE TRIGGER ends only at `END;`. It works
 * on bytes (every character that matters is ASCII), so row data is never decoded into JavaScript
 * strings; bytes are pushed as they stream in and `drain` yields what is complete.
 */
export interface SqlPiece {
  /** The statement's bytes without its semicolon (empty for a comment). */
  data: Buffer;
  /** A `--` comment line standing between statements. */
  comment?: string;
  /** 1-based line where it starts. */
  line: number;
}

const NL = 0x0a;
const SEMI = 0x3b;
const QUOTE = 0x27;
const DQUOTE = 0x22;
const BACKTICK = 0x60;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;

export class SqlSplitter {
  #pos = 0;
  #line = 1;

  /**
   * Bytes of the buffer last given to {@link drain} that it has consumed: the caller keeps the rest and
   * passes it again, followed by more input, to the next call.
   */
  get consumed(): number {
    return this.#pos;
  }

  /**
   * The complete statements and comments at the start of `buf` (pieces are views of it). Stops at the
   * first incomplete one, which the next call gets again with more bytes after it.
   */
  *drain(buf: Buffer): Generator<SqlPiece> {
    this.#pos = 0;
    for (;;) {
      const pos = this.#skipSpace(buf, this.#pos);
      this.#pos = pos;
      if (pos >= buf.length) return;
      if (buf[pos] === DASH && buf[pos + 1] === DASH) {
        const nl = buf.indexOf(NL, pos);
        if (nl < 0) return;
        const comment = buf.toString('utf8', pos, nl);
        this.#pos = nl + 1;
        yield { data: buf.subarray(pos, pos), comment, line: this.#line++ };
        continue;
      }
      if (buf[pos] === SLASH && buf[pos + 1] === STAR) {
        const close = buf.indexOf('*/', pos + 2);
        if (close < 0) return;
        this.#line += countNewlines(buf, pos, close);
        this.#pos = close + 2;
        continue;
      }
      const head = buf.toString('latin1', pos, Math.min(buf.length, pos + 40));
      const end = /^INSERT\s+INTO\s/i.test(head)
        ? insertEnd(buf, pos)
        : generalEnd(buf, pos, /^CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\s/i.test(head));
      if (end < 0) return;
      const line = this.#line;
      this.#line += countNewlines(buf, pos, end);
      this.#pos = end + 1;
      yield { data: buf.subarray(pos, end), line };
    }
  }

  /** What is left (`buf`, the unconsumed bytes) when the input ends: an unterminated statement, if any. */
  finish(buf: Buffer): { line: number } | null {
    const pos = this.#skipSpace(buf, 0);
    if (pos >= buf.length) return null;
    if (buf[pos] === DASH && buf[pos + 1] === DASH && buf.indexOf(NL, pos) < 0) return null; // a last comment line
    return { line: this.#line };
  }

  #skipSpace(buf: Buffer, pos: number): number {
    while (pos < buf.length) {
      const c = buf[pos]!;
      if (c === NL) this.#line++;
      else if (c !== 0x20 && c !== 0x09 && c !== 0x0d) {
        if (c === 0xef && buf[pos + 1] === 0xbb && buf[pos + 2] === 0xbf) {
          pos += 3; // a byte-order mark
          continue;
        }
        break;
      }
      pos++;
    }
    return pos;
  }
}

function countNewlines(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = buf.indexOf(NL, from); i >= 0 && i < to; i = buf.indexOf(NL, i + 1)) n++;
  return n;
}

/** Index of the byte that closes a quoted run opened at `i`, or -1 when it is not in the buffer yet. */
function closeQuote(buf: Buffer, i: number): number {
  const c = buf[i];
  return buf.indexOf(c === LBRACKET ? RBRACKET : c!, i + 1);
}

function isQuote(c: number | undefined): boolean {
  return c === QUOTE || c === DQUOTE || c === BACKTICK || c === LBRACKET;
}

/**
 * End of an INSERT: identifiers before VALUES are skipped with the general rules; after VALUES only
 * strings can hide a semicolon (the value parser refuses comments and quoted names there).
 */
function insertEnd(buf: Buffer, pos: number): number {
  let i = pos;
  let head = -1;
  while (i < buf.length) {
    const c = buf[i]!;
    if (isQuote(c)) {
      const close = closeQuote(buf, i);
      if (close < 0) return -1;
      i = close + 1;
      continue;
    }
    if (c === SEMI) return i;
    if ((c === 0x56 || c === 0x76) && /^VALUES\b/i.test(buf.toString('latin1', i, i + 7)) && !/[\w$]/.test(String.fromCharCode(buf[i - 1] ?? 32))) {
      head = i + 6;
      break;
    }
    i++;
  }
  if (head < 0) return -1;
  // Jump string to string; both searches are cached so each byte is looked at about once.
  let semi = buf.indexOf(SEMI, head);
  let quote = buf.indexOf(QUOTE, head);
  for (;;) {
    if (semi < 0) return -1;
    if (quote < 0 || semi < quote) return semi;
    const close = buf.indexOf(QUOTE, quote + 1);
    if (close < 0) return -1;
    quote = buf.indexOf(QUOTE, close + 1);
    if (semi < close) semi = buf.indexOf(SEMI, close + 1);
  }
}

/** End of any other statement: a full scan of strings, quoted names, comments and trigger bodies. */
function generalEnd(buf: Buffer, pos: number, trigger: boolean): number {
  let i = pos;
  while (i < buf.length) {
    const c = buf[i]!;
    if (isQuote(c)) {
      const close = closeQuote(buf, i);
      if (close < 0) return -1;
      i = close + 1;
    } else if (c === DASH && buf[i + 1] === DASH) {
      const nl = buf.indexOf(NL, i);
      if (nl < 0) return -1;
      i = nl + 1;
    } else if (c === SLASH && buf[i + 1] === STAR) {
      const close = buf.indexOf('*/', i + 2);
      if (close < 0) return -1;
      i = close + 2;
    } else if (c === SEMI) {
      if (!trigger || /(?:^|[^\w$])END\s*$/i.test(buf.toString('latin1', Math.max(pos, i - 12), i))) return i;
      i++;
    } else i++;
  }
  return -1;
}
