import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI entry point compiled beside this file. */
export const CLI_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

/**
 * The V8 flags the CLI runs with, read from its shebang line (`#!/usr/bin/env -S node FLAGS`), so that
 * child processes started as `node main.js` (the demo, the benchmark, the tests) run exactly as
 * `scriptorium` does. It matters for long-running ones: without `--max-semi-space-size=2` V8 grows a
 * busy `serve`'s young generation step by step to its default 2 × 16 MiB, about 28 MiB more RSS.
 *
 * @param entry the compiled CLI whose shebang is read (default: the one beside this file).
 */
export function cliNodeFlags(entry: string = CLI_ENTRY): string[] {
  try {
    const first = fs.readFileSync(entry, 'utf8').split('\n', 1)[0] ?? '';
    const m = /^#!.*\bnode\b(.*)$/.exec(first);
    return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
  } catch {
    return [];
  }
}
