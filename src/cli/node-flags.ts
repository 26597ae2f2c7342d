import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The CLI entry point compiled beside this file. */
export const CLI_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

/**
 * The V8 flags the CLI runs with, read from its shebang line (`#!/usr/bin/env -S node FLAGS`), so that
 * child processes started as `node main.js` (the demo, the benchmark) run exactly as `scriptorium` does.
 */
export function cliNodeFlags(): string[] {
  try {
    const first = fs.readFileSync(CLI_ENTRY, 'utf8').split('\n', 1)[0] ?? '';
    const m = /^#!.*\bnode\b(.*)$/.exec(first);
    return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
  } catch {
    return [];
  }
}
