/**
 * The one check that schema SQL from outside (a repository manifest, an ndjson or json export header,
 * a sql script) passes before any connection of ours runs it: the text must be exactly one CREATE
 * statement of the object it claims to be, with that name (and, for an index or trigger, on the table
 * it claims), and nothing else: no second statement, no ATTACH, no PRAGMA, no `CREATE TABLE ... AS
 * SELECT`, no TEMP object, no object in another schema.
 *
 * It works on SQLite's own tokens (strings, quoted names, comments and blob literals are skipped as
 * SQLite's tokenizer skips them), so a `;` or a keyword hidden in a string cannot move a statement's
 * end. Expressions inside the statement (CHECK, DEFAULT, generated columns, a view's SELECT, a
 * trigger's body) are not judged here: they run only on rows we insert or when a trigger fires, and
 * on our connections they are held by `trusted_schema = OFF` and, with the extension, by the
 * authorizer (native/scriptorium_guard.inc). One exception: in a table's or an index's expressions (the
 * ones our own inserts evaluate) the functions that build a value out of nothing but their arguments
 * (`randomblob(n)`, `zeroblob(n)`, a `printf` width) may not be asked for more than
 * {@link MAX_BUILT_BYTES}: a few bytes of schema would otherwise cost a restore or an import a
 * gigabyte of memory per row (see docs/security.md).
 */

/** What a piece of schema SQL claims to create. */
export interface ClaimedObject {
  type: 'table' | 'index' | 'view' | 'trigger';
  name: string;
  /** For an index or trigger: the table (or, for INSTEAD OF triggers, the view) it is on. Unchecked when absent. */
  table?: string;
}

/** The only virtual table modules a schema may create (FTS5 and R*Tree; their tables are data we carry). */
const VIRTUAL_MODULES = new Set(['fts5', 'rtree', 'rtree_i32']);

/**
 * Bounds on one statement, so that a hostile header cannot make the check itself take unbounded memory:
 * far beyond any real schema (a 2,000-column table is about 20,000 tokens and 100 KB).
 */
const MAX_SQL_CHARS = 16 << 20;
const MAX_TOKENS = 1_000_000;

/**
 * The most bytes a function in a table's or index's expression may be asked to build from its arguments
 * alone (`randomblob(n)`, `zeroblob(n)`, a `printf` width or precision): far beyond any real default (a
 * 16-byte random id, a fixed-size zero block), far below what would cost memory that no stored value
 * accounts for.
 */
export const MAX_BUILT_BYTES = 1 << 20;

/** Functions whose one argument is the size of the value they build. */
const SIZED_FUNCTIONS = new Set(['randomblob', 'zeroblob']);
/** Functions whose first argument is a format that may ask for any width or precision. */
const FORMAT_FUNCTIONS = new Set(['printf', 'format']);

/** Statements a trigger body may hold (SQLite's grammar allows no other). */
const TRIGGER_STATEMENTS = new Set(['INSERT', 'UPDATE', 'DELETE', 'SELECT', 'WITH', 'REPLACE', 'VALUES']);

type TokenKind = 'word' | 'name' | 'string' | 'blob' | 'number' | 'punct';

interface Token {
  kind: TokenKind;
  /** The token's text as written; for `name` and `string`, without quotes. */
  text: string;
}

/**
 * Why `sql` is not exactly the plain CREATE statement of `claimed`, or `undefined` when it is.
 * The reason reads after "its schema is", e.g. `not a plain CREATE TABLE statement (a second statement follows)`.
 *
 * @example
 * ```ts
 * schemaProblem({ type: 'table', name: 'x' }, "CREATE TABLE x(a); ATTACH 'f' AS v");
 * // → 'not a plain CREATE TABLE statement (a second statement follows)'
 * ```
 */
export function schemaProblem(claimed: ClaimedObject, sql: unknown): string | undefined {
  if (!['table', 'index', 'view', 'trigger'].includes(claimed.type)) return 'not a plain CREATE statement (its type is not table, index, view or trigger)';
  const what = `a plain CREATE ${claimed.type.toUpperCase()} statement`;
  if (typeof sql !== 'string') return `not ${what} (it is not text)`;
  if (typeof claimed.name !== 'string' || (claimed.table !== undefined && typeof claimed.table !== 'string')) return `not ${what} (its name is not text)`;
  if (sql.length > MAX_SQL_CHARS) return `not ${what} (it is longer than ${MAX_SQL_CHARS >> 20} MiB)`;
  const tokens = tokenize(sql);
  if (typeof tokens === 'string') return `not ${what} (${tokens})`;
  const reason = new Checker(tokens, claimed).check();
  return reason === undefined ? undefined : `not ${what} (${reason})`;
}

/** Splits `sql` as SQLite's tokenizer does, dropping whitespace and comments; a string is the reason it cannot. */
function tokenize(sql: string): Token[] | string {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  const isSpace = (c: string): boolean => c === ' ' || (c >= '\t' && c <= '\r');
  // SQLite's IdChar: letters, digits, '_', '$' and every byte of a multi-byte UTF-8 character.
  const isIdChar = (c: string): boolean => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) >= 0x80;
  while (i < n) {
    const c = sql[i]!;
    if (c === '\0') return 'it holds a NUL character';
    if (tokens.length > MAX_TOKENS) return `it has more than ${MAX_TOKENS} tokens`;
    if (isSpace(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2; // SQLite, too, ends an unclosed comment at the end of the text
    } else if (c === "'" || c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      let text = '';
      for (;;) {
        const k = sql.indexOf(close, j);
        if (k < 0) return 'a quoted string or name is not closed';
        text += sql.slice(j, k);
        if (close !== ']' && sql[k + 1] === close) {
          text += close;
          j = k + 2;
          continue;
        }
        j = k + 1;
        break;
      }
      tokens.push({ kind: c === "'" ? 'string' : 'name', text });
      i = j;
    } else if ((c === 'x' || c === 'X') && sql[i + 1] === "'") {
      const k = sql.indexOf("'", i + 2);
      if (k < 0) return 'a blob literal is not closed';
      tokens.push({ kind: 'blob', text: sql.slice(i + 2, k) });
      i = k + 1;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      let j = i + 1;
      while (j < n) {
        const d = sql[j]!;
        if ((d === '+' || d === '-') && /[eE]/.test(sql[j - 1]!) && /[0-9]/.test(sql[j + 1] ?? '')) j++;
        else if (isIdChar(d) || d === '.') j++;
        else break;
      }
      tokens.push({ kind: 'number', text: sql.slice(i, j) });
      i = j;
    } else if (c === '?' || c === ':' || c === '@' || c === '$' || c === '#') {
      return 'it holds a parameter'; // (before names: '$' is a name character, but not a name's first)
    } else if (isIdChar(c)) {
      let j = i + 1;
      while (j < n && isIdChar(sql[j]!)) j++;
      tokens.push({ kind: 'word', text: sql.slice(i, j) });
      i = j;
    } else {
      tokens.push({ kind: 'punct', text: c });
      i++;
    }
  }
  return tokens;
}

/** ASCII-only case folding, as SQLite compares names. */
function sameName(a: string, b: string): boolean {
  return a.replace(/[A-Z]/g, (ch) => ch.toLowerCase()) === b.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
}

/** Walks the tokens of one statement against what it claims to be. */
class Checker {
  readonly #tokens: Token[];
  readonly #claimed: ClaimedObject;
  #at = 0;

  constructor(tokens: Token[], claimed: ClaimedObject) {
    // One trailing ';' is the statement's own end (sql scripts keep it); anything after it is refused below.
    this.#tokens = tokens.length > 0 && isPunct(tokens[tokens.length - 1]!, ';') ? tokens.slice(0, -1) : tokens;
    this.#claimed = claimed;
  }

  check(): string | undefined {
    const reason = this.#structure();
    if (reason !== undefined) return reason;
    // Views and triggers never run on our connections (both are disabled there); tables and indexes
    // evaluate their expressions on every row we insert.
    return this.#claimed.type === 'table' || this.#claimed.type === 'index' ? builtValueProblem(this.#tokens) : undefined;
  }

  #structure(): string | undefined {
    if (!this.#keyword('CREATE')) return 'it does not begin with CREATE';
    if (this.#peekWord('TEMP') || this.#peekWord('TEMPORARY')) return 'it creates a TEMP object';
    switch (this.#claimed.type) {
      case 'table':
        return this.#table();
      case 'index':
        return this.#index();
      case 'view':
        return this.#view();
      case 'trigger':
        return this.#trigger();
      default:
        return 'its type is not table, index, view or trigger';
    }
  }

  #table(): string | undefined {
    const virtual = this.#keyword('VIRTUAL');
    if (!this.#keyword('TABLE')) return 'it creates something else';
    const named = this.#objectName();
    if (named) return named;
    if (virtual) {
      if (!this.#keyword('USING')) return 'a virtual table without USING';
      const module = this.#name();
      if (module === undefined || !VIRTUAL_MODULES.has(module.toLowerCase())) {
        return `virtual table module ${module === undefined ? '(none)' : JSON.stringify(module)} is not fts5, rtree or rtree_i32`;
      }
      if (this.#done()) return undefined;
      return this.#parens() ?? (this.#done() ? undefined : this.#peekPunct(';') ? 'more than one statement' : 'something follows its arguments');
    }
    if (!this.#peekPunct('(')) return 'it is not a column list (CREATE TABLE ... AS SELECT?)';
    const body = this.#parens();
    if (body) return body;
    // Table options: WITHOUT ROWID, STRICT, separated by commas.
    while (!this.#done()) {
      if (this.#keyword('WITHOUT')) {
        if (!this.#keyword('ROWID')) return 'WITHOUT without ROWID';
      } else if (this.#peekPunct(';')) return 'more than one statement';
      else if (!this.#keyword('STRICT') && !this.#punct(',')) return 'something follows the column list';
    }
    return undefined;
  }

  #index(): string | undefined {
    this.#keyword('UNIQUE');
    if (!this.#keyword('INDEX')) return 'it creates something else';
    const named = this.#objectName();
    if (named) return named;
    if (!this.#keyword('ON')) return 'no ON clause';
    const on = this.#name();
    if (on === undefined) return 'no table after ON';
    if (this.#peekPunct('.')) return 'its table is qualified';
    if (this.#claimed.table !== undefined && !sameName(on, this.#claimed.table)) return `it is on table ${JSON.stringify(on)}, not ${JSON.stringify(this.#claimed.table)}`;
    if (!this.#peekPunct('(')) return 'no column list';
    return this.#parens() ?? this.#restWithoutStatementEnd();
  }

  #view(): string | undefined {
    if (!this.#keyword('VIEW')) return 'it creates something else';
    const named = this.#objectName();
    if (named) return named;
    if (this.#peekPunct('(')) {
      const cols = this.#parens();
      if (cols) return cols;
    }
    if (!this.#keyword('AS')) return 'no AS';
    if (!this.#peekWord('SELECT') && !this.#peekWord('WITH') && !this.#peekWord('VALUES')) return 'its body is not a SELECT';
    return this.#restWithoutStatementEnd();
  }

  #trigger(): string | undefined {
    if (!this.#keyword('TRIGGER')) return 'it creates something else';
    const named = this.#objectName();
    if (named) return named;
    // [BEFORE | AFTER | INSTEAD OF] (DELETE | INSERT | UPDATE [OF columns]) ON [main.]table
    let on: string | undefined;
    while (!this.#done()) {
      const t = this.#next()!;
      if (isPunct(t, ';')) return 'more than one statement';
      if (t.kind === 'word' && t.text.toUpperCase() === 'ON') {
        on = this.#name();
        if (on !== undefined && this.#punct('.')) {
          if (!sameName(on, 'main')) return `its table is in schema ${JSON.stringify(on)}`;
          on = this.#name();
        }
        break;
      }
    }
    if (on === undefined) return 'no ON clause';
    if (this.#claimed.table !== undefined && !sameName(on, this.#claimed.table)) return `it is on ${JSON.stringify(on)}, not ${JSON.stringify(this.#claimed.table)}`;
    // [FOR EACH ROW] [WHEN expr] BEGIN
    while (!this.#done() && !this.#peekWord('BEGIN')) {
      const t = this.#next()!;
      if (isPunct(t, ';')) return 'more than one statement';
    }
    if (!this.#keyword('BEGIN')) return 'no BEGIN';
    // The body: statements ending in ';', then END. SQLite ends the trigger at the first END that
    // starts a statement, so every statement but the last piece must be one a trigger may hold.
    const rest = this.#tokens.slice(this.#at);
    const pieces: Token[][] = [[]];
    for (const t of rest) {
      if (isPunct(t, ';')) pieces.push([]);
      else pieces[pieces.length - 1]!.push(t);
    }
    const last = pieces.pop()!;
    if (pieces.length === 0) return 'an empty body';
    for (const piece of pieces) {
      const first = piece[0];
      if (!first || first.kind !== 'word' || !TRIGGER_STATEMENTS.has(first.text.toUpperCase())) {
        return first && first.kind === 'word' && first.text.toUpperCase() === 'END' ? 'more than one statement' : 'its body holds a statement a trigger cannot';
      }
    }
    if (last.length !== 1 || last[0]!.kind !== 'word' || last[0]!.text.toUpperCase() !== 'END') return 'it does not end with END';
    return undefined;
  }

  /** `[IF NOT EXISTS] [main.]name`, checked against the claimed name; a reason when it is not. */
  #objectName(): string | undefined {
    if (this.#peekWord('IF')) {
      this.#next();
      if (!this.#keyword('NOT') || !this.#keyword('EXISTS')) return 'IF without NOT EXISTS';
    }
    let name = this.#name();
    if (name === undefined) return 'it names nothing';
    if (this.#punct('.')) {
      if (!sameName(name, 'main')) return `it creates its object in schema ${JSON.stringify(name)}`;
      name = this.#name();
      if (name === undefined) return 'it names nothing';
    }
    if (!sameName(name, this.#claimed.name)) return `it creates ${JSON.stringify(name)}`;
    return undefined;
  }

  /** A balanced `( ... )` group holding no `;`; a reason when it is not. */
  #parens(): string | undefined {
    if (!this.#punct('(')) return 'no opening parenthesis';
    let depth = 1;
    while (depth > 0) {
      const t = this.#next();
      if (!t) return 'a parenthesis is not closed';
      if (isPunct(t, ';')) return 'more than one statement';
      if (isPunct(t, '(')) depth++;
      else if (isPunct(t, ')')) depth--;
    }
    return undefined;
  }

  /** The rest of the statement (a WHERE clause, a SELECT), which must hold no statement end. */
  #restWithoutStatementEnd(): string | undefined {
    while (!this.#done()) if (isPunct(this.#next()!, ';')) return 'more than one statement';
    return undefined;
  }

  /** A name token: bare word, quoted name or string literal (SQLite accepts 'x' as a name); dequoted. */
  #name(): string | undefined {
    const t = this.#tokens[this.#at];
    if (!t || (t.kind !== 'word' && t.kind !== 'name' && t.kind !== 'string')) return undefined;
    this.#at++;
    return t.text;
  }

  #keyword(word: string): boolean {
    if (!this.#peekWord(word)) return false;
    this.#at++;
    return true;
  }

  #peekWord(word: string): boolean {
    const t = this.#tokens[this.#at];
    return t !== undefined && t.kind === 'word' && t.text.toUpperCase() === word;
  }

  #punct(p: string): boolean {
    if (!this.#peekPunct(p)) return false;
    this.#at++;
    return true;
  }

  #peekPunct(p: string): boolean {
    const t = this.#tokens[this.#at];
    return t !== undefined && isPunct(t, p);
  }

  #next(): Token | undefined {
    return this.#tokens[this.#at++];
  }

  #done(): boolean {
    return this.#at >= this.#tokens.length;
  }
}

/**
 * Why an expression among `tokens` would build a large value from the schema alone: a call of
 * randomblob() or zeroblob() whose argument is not a numeric literal of at most MAX_BUILT_BYTES, or of
 * printf() / format() whose format is not a string literal, or asks for a `*` or a larger width or
 * precision. SQLite takes a function's name as a bare or a quoted name (`"zeroblob"(n)` is a call).
 */
function builtValueProblem(tokens: Token[]): string | undefined {
  for (let i = 0; i + 1 < tokens.length; i++) {
    const t = tokens[i]!;
    if ((t.kind !== 'word' && t.kind !== 'name') || !isPunct(tokens[i + 1]!, '(')) continue;
    const fn = t.text.toLowerCase();
    if (SIZED_FUNCTIONS.has(fn)) {
      // ( [+|-] number )
      let j = i + 2;
      if (tokens[j] && (isPunct(tokens[j]!, '-') || isPunct(tokens[j]!, '+'))) j++;
      const arg = tokens[j];
      const size = arg?.kind === 'number' ? Number(arg.text) : Number.NaN;
      if (!tokens[j + 1] || !isPunct(tokens[j + 1]!, ')') || !Number.isFinite(size)) {
        return `an expression calls ${t.text}() with an argument that is not a number literal (it could build a value of any size)`;
      }
      if (Math.abs(size) > MAX_BUILT_BYTES) return `an expression calls ${t.text}(${arg!.text}): a value larger than ${MAX_BUILT_BYTES >> 20} MiB built from the schema alone`;
    } else if (FORMAT_FUNCTIONS.has(fn)) {
      const arg = tokens[i + 2];
      if (arg?.kind !== 'string') return `an expression calls ${t.text}() with a format that is not a string literal (it could ask for any width)`;
      // %[flags][width][.precision]: '*' takes the width from an argument
      for (const m of arg.text.matchAll(/%[-+ 0#,!]*([0-9*]*)(?:\.([0-9*]*))?/g)) {
        for (const part of [m[1], m[2]]) {
          if (part && (part.includes('*') || Number(part) > MAX_BUILT_BYTES)) {
            return `an expression calls ${t.text}() with the width or precision ${JSON.stringify(part)}: a value larger than ${MAX_BUILT_BYTES >> 20} MiB built from the schema alone`;
          }
        }
      }
    }
  }
  return undefined;
}

function isPunct(t: Token, p: string): boolean {
  return t.kind === 'punct' && t.text === p;
}
