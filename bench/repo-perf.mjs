#!/usr/bin/env node
/**
 * One repository operation on its own, through the library rather than the CLI, for timing and peak RSS
 * with `/usr/bin/time -v` (profiling). The reported figures come from `npm run bench`, which runs the CLI's
 * `backup` and `restore` against their peers in the same run (src/bench/cases.ts).
 *
 *   node bench/repo-perf.mjs backup <db> <repo>     (initialises <repo> when it does not exist)
 *   node bench/repo-perf.mjs restore <repo> <into>
 */
import { existsSync } from 'node:fs';
import { backup, init, restore } from '../dist/repository/index.js';

const [op, a, b] = process.argv.slice(2);
const t0 = performance.now();
if (op === 'backup') {
  if (!existsSync(b)) await init(b);
  const snap = await backup(a, b);
  console.log(`backup: ${snap.stats.rows} rows, ${snap.stats.chunks} chunks, ${(snap.stats.storedBytes / 1e6).toFixed(1)} MB stored, ${((performance.now() - t0) / 1000).toFixed(2)} s`);
} else if (op === 'restore') {
  const result = await restore('latest', a, { into: b, force: true });
  console.log(`restore: ${result.rows} rows, ${((performance.now() - t0) / 1000).toFixed(2)} s`);
} else {
  console.error('usage: repo-perf.mjs backup <db> <repo> | restore <repo> <into>');
  process.exit(2);
}
