/**
 * Splits SQL into statements the way SQLite's tokenizer would: semicolons inside strings, quoted
 * identifiers and comments do not end a statement, and a CREATE TRIGGER ends only at `END;`. It works
 * on bytes (every character that matters is ASCII), so row data is never decoded into JavaScript
 * strings; bytes are pushed as they stream in and `drain` yields what is complete.
 *
 * What it keeps unconsumed between calls is bounded by one unit, never by a statement: an INSERT longer
 * than `streamAt` (a multi-row INSERT of many MB, as some dumps write) is handed out in pieces of whole
 * VALUES tuples as they complete, and comments of any length are skipped as they stream past.
 */
export interface SqlPiece {
  /** The statement's bytes without its semicolon (empty for a comment); for a later piece of an INSERT, whole tuples. */
  data: Buffer;
  /** A `--` comment line standing between statements. */
  comment?: string;
  /** 1-based line where it starts. */
  line: number;
  /**
   * Set for every INSERT: its VALUES list starts at byte `at` of `data` (0 in later pieces). `first`
   * marks the piece that holds the statement's head, `last` the one that ends it; an INSERT that fits
   * is one piece with both. Pieces of one INSERT are whole tuples: joined by commas, they are its list.
   * With tuple streaming on (see the constructor), a tuple too long to hold comes in several pieces
   * instead: `partial` marks a piece that ends inside it, `cont` one that starts inside it (the next
   * piece after a `partial` one); a `cont` piece that is not `partial` ends the tuple, and whole tuples
   * may follow it in the same piece.
   */
  values?: { at: number; first: boolean; last: boolean; partial?: boolean; cont?: boolean };
}

const NL = 0x0a;
const SEMI = 0x3b;
const QUOTE = 0x27;
const DQUOTE = 0x22;
const BACKTICK = 0x60;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const LPAREN = 0x28;
const RPAREN = 0x29;
const COMMA = 0x2c;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;

/** The one comment kept whole: scriptorium's own (digests); any other is skipped as it streams. */
const OWN_COMMENT = '-- scriptorium:';

/** Bytes of an unfinished INSERT after which its tuples are handed out as they complete. */
const STREAM_AT = 256 << 10;

/** Where the tuple scan of a streaming INSERT stands, relative to the splitter's unconsumed start. */
interface InsertScan {
  /** Line of the statement's start. */
  line: number;
  /** No piece handed out yet: the unconsumed bytes start with the statement's head. */
  first: boolean;
  /** End of the head (after VALUES), in the first piece. */
  at: number;
  /** Where scanning resumes (an opening quote, or the end of what was scanned). */
  scan: number;
  depth: number;
  /** The last thing at top level was a tuple (a comma may follow) / a comma (a tuple must follow). */
  afterTuple: boolean;
  afterComma: boolean;
  tuples: number;
  /** Something other than tuples was seen: the rest goes to the parser as it is, to be refused there. */
  garbage: boolean;
  /** Scanning inside a quoted literal (it went on past the bytes scanned so far). */
  inQuote: boolean;
  /** The unconsumed bytes start inside a tuple, of which a `partial` piece was handed out. */
  cont: boolean;
}

export class SqlSplitter {
  #pos = 0;
  #line = 1;
  #skip: 'line' | 'block' | null = null;
  #insert: InsertScan | null = null;
  readonly #streamAt: number;
  readonly #tupleStreamAt: number;

  /**
   * @param streamAt bytes of an unfinished INSERT after which it is handed out tuple by tuple
   * @param tupleStreamAt bytes of an unfinished tuple after which it is handed out in pieces (`partial`);
   * by default never (the consumer must be able to load a tuple from pieces)
   */
  constructor(streamAt = STREAM_AT, tupleStreamAt = Infinity) {
    this.#streamAt = streamAt;
    this.#tupleStreamAt = tupleStreamAt;
  }

  /**
   * Bytes of the buffer last given to {@link drain} that it has consumed: the caller keeps the rest and
   * passes it again, followed by more input, to the next call.
   */
  get consumed(): number {
    return this.#pos;
  }

  /** The line where the unconsumed bytes (the unit in progress) start, for errors. */
  get line(): number {
    return this.#insert?.line ?? this.#line;
  }

  /**
   * The complete statements, comments and INSERT pieces at the start of `buf` (pieces are views of it).
   * Stops at the first incomplete one, which the next call gets again with more bytes after it.
   */
  *drain(buf: Buffer): Generator<SqlPiece> {
    this.#pos = 0;
    for (;;) {
      if (this.#skip) {
        if (!this.#skipComment(buf)) return;
        continue;
      }
      if (this.#insert) {
        const piece = this.#tuples(buf, this.#insert);
        if (piece) yield piece;
        if (this.#insert) return; // the rest of the INSERT is not in the buffer yet
        continue;
      }
      const pos = this.#skipSpace(buf, this.#pos);
      this.#pos = pos;
      if (pos >= buf.length) return;
      if (buf[pos] === DASH && buf[pos + 1] === DASH) {
        const nl = buf.indexOf(NL, pos);
        if (nl < 0) {
          // Keep our own comment whole (it is short); skip any other as it streams, however long.
          if (buf.length - pos < OWN_COMMENT.length || buf.toString('latin1', pos, pos + OWN_COMMENT.length) === OWN_COMMENT) return;
          this.#skip = 'line';
          continue;
        }
        const comment = buf.toString('utf8', pos, nl);
        this.#pos = nl + 1;
        yield { data: buf.subarray(pos, pos), comment, line: this.#line++ };
        continue;
      }
      if (buf[pos] === SLASH && buf[pos + 1] === STAR) {
        this.#pos = pos + 2;
        this.#skip = 'block';
        continue;
      }
      const head = buf.toString('latin1', pos, Math.min(buf.length, pos + 40));
      if (/^INSERT\s+INTO\s/i.test(head)) {
        const { end, values } = insertEnd(buf, pos);
        if (end >= 0) {
          const line = this.#line;
          this.#line += countNewlines(buf, pos, end);
          this.#pos = end + 1;
          yield { data: buf.subarray(pos, end), line, values: { at: values - pos, first: true, last: true } };
          continue;
        }
        if (values < 0 || buf.length - pos < this.#streamAt) return;
        const at = values - pos;
        this.#insert = { line: this.#line, first: true, at, scan: at, depth: 0, afterTuple: false, afterComma: false, tuples: 0, garbage: false, inQuote: false, cont: false };
        continue;
      }
      const end = generalEnd(buf, pos, /^CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\s/i.test(head));
      if (end < 0) return;
      const line = this.#line;
      this.#line += countNewlines(buf, pos, end);
      this.#pos = end + 1;
      yield { data: buf.subarray(pos, end), line };
    }
  }

  /** What is left (`buf`, the unconsumed bytes) when the input ends: an unterminated statement, if any. */
  finish(buf: Buffer): { line: number } | null {
    if (this.#insert) return { line: this.#insert.line };
    if (this.#skip === 'block') return { line: this.#line };
    if (this.#skip === 'line') return null; // a last comment line without its newline
    const pos = this.#skipSpace(buf, 0);
    if (pos >= buf.length) return null;
    if (buf[pos] === DASH && buf[pos + 1] === DASH && buf.indexOf(NL, pos) < 0) return null; // a last comment line
    return { line: this.#line };
  }

  /** Skips the comment in progress; false when it goes on past the buffer (all of which is consumed). */
  #skipComment(buf: Buffer): boolean {
    const pos = this.#pos;
    if (this.#skip === 'line') {
      const nl = buf.indexOf(NL, pos);
      if (nl < 0) {
        this.#pos = buf.length;
        return false;
      }
      this.#pos = nl + 1;
      this.#line++;
    } else {
      const close = buf.indexOf('*/', pos);
      if (close < 0) {
        const keep = Math.max(pos, buf.length - 1); // a '*' at the end may start the '*/'
        this.#line += countNewlines(buf, pos, keep);
        this.#pos = keep;
        return false;
      }
      this.#line += countNewlines(buf, pos, close);
      this.#pos = close + 2;
    }
    this.#skip = null;
    return true;
  }

  /**
   * Scans the tuples of a streaming INSERT from where the last call stopped; returns the piece of the
   * whole tuples found (consumed), and clears the scan when the statement's semicolon is reached.
   */
  #tuples(buf: Buffer, st: InsertScan): SqlPiece | null {
    const start = this.#pos;
    let i = start + st.scan;
    let last = -1; // just after the last whole tuple
    let semi = -1;
    while (i < buf.length) {
      if (st.garbage) {
        semi = valuesEnd(buf, i); // when not found, it is searched again from here (a string may be open)
        break;
      }
      if (st.inQuote) {
        // A doubled quote closes the literal and opens it again at once: the same result.
        const close = buf.indexOf(QUOTE, i);
        if (close < 0) {
          i = buf.length; // resume inside the literal, after what was scanned
          break;
        }
        st.inQuote = false;
        i = close + 1;
        continue;
      }
      const c = buf[i]!;
      if (st.depth > 0) {
        if (c === QUOTE) {
          st.inQuote = true;
          i++;
          continue;
        }
        if (c === LPAREN) st.depth++;
        else if (c === RPAREN && --st.depth === 0) {
          last = i + 1;
          st.tuples++;
          st.afterTuple = true;
        }
        i++;
        continue;
      }
      if (c === 0x20 || c === NL || c === 0x09 || c === 0x0d) i++;
      else if (c === LPAREN && (st.afterComma || st.tuples === 0)) {
        st.depth = 1;
        st.afterComma = false;
        i++;
      } else if (c === COMMA && st.afterTuple) {
        st.afterTuple = false;
        st.afterComma = true;
        i++;
      } else if (c === SEMI && !st.afterComma) {
        semi = i;
        break;
      } else st.garbage = true;
    }
    if (semi >= 0) {
      // The end: whole tuples not handed out yet, or, after garbage or when there were no tuples at
      // all, everything up to the semicolon (the parser judges and refuses it with its own words).
      const end = st.garbage || st.tuples === 0 ? semi : last;
      const from = st.first || st.garbage || st.cont ? start : tupleStart(buf, start);
      const piece = end > from || st.first ? this.#piece(buf, st, start, from, end, true) : null;
      this.#line += countNewlines(buf, start, semi);
      this.#pos = semi + 1;
      this.#insert = null;
      return piece;
    }
    if (last < 0) {
      if (st.depth > 0 && !st.garbage && i - start >= this.#tupleStreamAt) {
        // One tuple too long to hold (a large value): what was scanned of it goes out now.
        const from = st.first || st.cont ? start : tupleStart(buf, start);
        const piece = this.#piece(buf, st, start, from, i, false, true);
        this.#line += countNewlines(buf, start, i);
        this.#pos = i;
        st.scan = 0;
        st.first = false;
        st.cont = true;
        return piece;
      }
      st.scan = i - start;
      return null;
    }
    const from = st.first || st.garbage || st.cont ? start : tupleStart(buf, start);
    const piece = this.#piece(buf, st, start, from, last, false);
    this.#line += countNewlines(buf, start, last);
    this.#pos = last;
    st.scan = i - last;
    st.first = false;
    st.cont = false;
    return piece;
  }

  #piece(buf: Buffer, st: InsertScan, start: number, from: number, end: number, last: boolean, partial = false): SqlPiece {
    const line = st.first ? st.line : this.#line + countNewlines(buf, start, from);
    const values: NonNullable<SqlPiece['values']> = { at: st.first ? st.at : 0, first: st.first, last };
    if (partial) values.partial = true;
    if (st.cont) values.cont = true;
    return { data: buf.subarray(from, Math.max(from, end)), line, values };
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

/** Where the next tuple starts: after the space and the comma that follow the tuples handed out. */
function tupleStart(buf: Buffer, from: number): number {
  let i = from;
  while (i < buf.length && (buf[i] === 0x20 || buf[i] === NL || buf[i] === 0x09 || buf[i] === 0x0d || buf[i] === COMMA)) i++;
  return i;
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
 * End of an INSERT (its semicolon, or -1 when not in the buffer yet) and the end of its head (just after
 * VALUES, or -1 when not in the buffer yet): identifiers before VALUES are skipped with the general
 * rules; after VALUES only strings can hide a semicolon (the value parser refuses comments and quoted
 * names there).
 */
function insertEnd(buf: Buffer, pos: number): { end: number; values: number } {
  let i = pos;
  let head = -1;
  while (i < buf.length) {
    const c = buf[i]!;
    if (isQuote(c)) {
      const close = closeQuote(buf, i);
      if (close < 0) return { end: -1, values: -1 };
      i = close + 1;
      continue;
    }
    if (c === SEMI) return { end: i, values: i };
    if ((c === 0x56 || c === 0x76) && /^VALUES\b/i.test(buf.toString('latin1', i, i + 7)) && !/[\w$]/.test(String.fromCharCode(buf[i - 1] ?? 32))) {
      head = i + 6;
      break;
    }
    i++;
  }
  if (head < 0) return { end: -1, values: -1 };
  return { end: valuesEnd(buf, head), values: head };
}

/** The semicolon that ends a VALUES list from `from`, skipping strings; -1 when not in the buffer yet. */
function valuesEnd(buf: Buffer, from: number): number {
  // Jump string to string; both searches are cached so each byte is looked at about once.
  let semi = buf.indexOf(SEMI, from);
  let quote = buf.indexOf(QUOTE, from);
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
