/**
 * Splits SQL text into statements the way SQLite's tokenizer would: semicolons inside strings, quoted
 * identifiers and comments do not end a statement, and a CREATE TRIGGER ends only at `END;`. Text is
 * pushed in pieces as it streams in; `drain` yields what is complete.
 */
export interface SqlPiece {
  /** The statement without its semicolon (undefined for a comment). */
  text: string;
  /** A `--` comment line standing between statements. */
  comment?: string;
  /** 1-based line where it starts. */
  line: number;
}

const INSERT_HEAD = /INSERT\s+INTO\s/iy;
const TRIGGER_HEAD = /CREATE\s+(?:TEMP\s+|TEMPORARY\s+)?TRIGGER\s/iy;

export class SqlSplitter {
  #text = '';
  #pos = 0;
  #line = 1;

  push(text: string): void {
    this.#text = this.#pos < this.#text.length ? this.#text.slice(this.#pos) + text : text;
    this.#pos = 0;
  }

  *drain(): Generator<SqlPiece> {
    const text = this.#text;
    for (;;) {
      let pos = this.#skipSpace(text, this.#pos);
      this.#pos = pos;
      if (pos >= text.length) return;
      if (text.startsWith('--', pos)) {
        const nl = text.indexOf('\n', pos);
        if (nl < 0) return;
        const comment = text.slice(pos, nl);
        this.#pos = nl + 1;
        yield { text: '', comment, line: this.#line++ };
        continue;
      }
      if (text.startsWith('/*', pos)) {
        const close = text.indexOf('*/', pos + 2);
        if (close < 0) return;
        this.#line += countNewlines(text, pos, close);
        this.#pos = close + 2;
        continue;
      }
      INSERT_HEAD.lastIndex = pos;
      TRIGGER_HEAD.lastIndex = pos;
      const end = INSERT_HEAD.test(text) ? insertEnd(text, pos) : generalEnd(text, pos, TRIGGER_HEAD.test(text));
      if (end < 0) return;
      const line = this.#line;
      this.#line += countNewlines(text, pos, end);
      this.#pos = end + 1;
      yield { text: text.slice(pos, end), line };
      pos = end + 1;
    }
  }

  /** What is left when the input ends: an unterminated statement, if any. */
  finish(): { line: number } | null {
    const pos = this.#skipSpace(this.#text, this.#pos);
    if (pos >= this.#text.length) return null;
    if (this.#text.startsWith('--', pos) && this.#text.indexOf('\n', pos) < 0) return null; // last comment line
    return { line: this.#line };
  }

  #skipSpace(text: string, pos: number): number {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 10) this.#line++;
      else if (c !== 32 && c !== 9 && c !== 13 && c !== 0xfeff) break;
      pos++;
    }
    return pos;
  }
}

function countNewlines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i >= 0 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * End of an INSERT: its identifiers come before VALUES and are skipped by the general scanner; after
 * that only strings can hide a semicolon (the validator refuses comments and quoted names there).
 */
function insertEnd(text: string, pos: number): number {
  const values = /\bVALUES\b/iy;
  // Find VALUES outside quotes with the general scanner's rules, then jump string to string.
  let i = pos;
  let head = -1;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = text.indexOf(c === '[' ? ']' : c, i + 1);
      if (close < 0) return -1;
      i = close + 1;
      continue;
    }
    if (c === ';') return i;
    values.lastIndex = i;
    if ((c === 'V' || c === 'v') && values.test(text)) {
      head = i + 6;
      break;
    }
    i++;
  }
  if (head < 0) return -1;
  // Jump string to string; both searches are cached so each byte is looked at about once.
  let semi = text.indexOf(';', head);
  let quote = text.indexOf("'", head);
  for (;;) {
    if (semi < 0) return -1;
    if (quote < 0 || semi < quote) return semi;
    const close = text.indexOf("'", quote + 1);
    if (close < 0) return -1;
    quote = text.indexOf("'", close + 1);
    if (semi < close) semi = text.indexOf(';', close + 1);
  }
}

/** End of any other statement: a full scan of strings, quoted names, comments and trigger bodies. */
function generalEnd(text: string, pos: number, trigger: boolean): number {
  let i = pos;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = text.indexOf(c === '[' ? ']' : c, i + 1);
      if (close < 0) return -1;
      i = close + 1;
    } else if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      if (nl < 0) return -1;
      i = nl + 1;
    } else if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      if (close < 0) return -1;
      i = close + 2;
    } else if (c === ';') {
      if (!trigger || /(?:^|[^\w$])END\s*$/i.test(text.slice(Math.max(pos, i - 12), i))) return i;
      i++;
    } else i++;
  }
  return -1;
}
