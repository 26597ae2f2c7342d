/**
 * Line numbers of the values in a JSON text, by path, so a config error can name the line a field is on.
 * The text must already be valid JSON (it is parsed with `JSON.parse` first); this scanner only walks it.
 */

/** A path into a JSON value: object keys and array indexes. */
export type JsonPath = ReadonlyArray<string | number>;

/** The key under which a path is kept: its parts joined by NUL (no JSON key can end a part early). */
export const pathKey = (path: JsonPath): string => path.map(String).join('\u0000');

/**
 * Maps every value's path to the 1-based line its key (for object members) or its value starts on.
 *
 * @example lineMap('{\n "a": {\n  "b": 1 } }').get(pathKey(['a', 'b'])) // 3
 */
export function lineMap(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  let i = 0;
  let line = 1;
  const skipSpace = () => {
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === '\n') line++;
      else if (c !== ' ' && c !== '\t' && c !== '\r') break;
    }
  };
  const readString = (): string => {
    const start = i;
    for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: (string | number)[], at: number): void => {
    skipSpace();
    lines.set(pathKey(path), at === 0 ? line : at);
    const c = text[i];
    if (c === '{') {
      i++;
      skipSpace();
      if (text[i] === '}') return void i++;
      for (;;) {
        skipSpace();
        const keyLine = line;
        const key = readString();
        skipSpace();
        i++; // ':'
        value([...path, key], keyLine);
        skipSpace();
        if (text[i++] === '}') return;
      }
    }
    if (c === '[') {
      i++;
      skipSpace();
      if (text[i] === ']') return void i++;
      for (let n = 0; ; n++) {
        value([...path, n], 0);
        skipSpace();
        if (text[i++] === ']') return;
      }
    }
    if (c === '"') return void readString();
    while (i < text.length && !/[\s,\]}]/.test(text[i]!)) i++;
  };
  value([], 0);
  return lines;
}
