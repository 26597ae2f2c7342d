#!/usr/bin/env node
/**
 * Deduplication benchmark for the backup repository (issue 4): how many bytes a snapshot stores after
 * 1% of the demo database's rows were updated (uniformly at random, or in clustered runs), or 1% new
 * rows were appended, relative to the first snapshot.
 *
 *   npm run build && node bench/dedup.mjs [--rows 1000000] [--chunk-bytes 1024] [--dir /tmp/x] [--json]
 *
 * The scenarios are those of `npm run bench` (src/bench/dedup.ts, which the benchmark runs at its largest
 * size with the default settings); this script runs them alone, at any size and with other repository
 * settings. Every scenario starts from the same first snapshot; "stored" is what the backup added to the
 * repository (pack files + index file + manifest), measured from the store, not estimated.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDemoDatabase, demoRowCounts } from '../dist/demo/demo-data.js';
import { runDedup } from '../dist/bench/dedup.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'chunk-bytes': { type: 'string' },
    'min-chunk-bytes': { type: 'string' },
    'pack-bytes': { type: 'string' },
    level: { type: 'string' },
    dir: { type: 'string' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

const totalRows = Number(args.rows);
const perRecord = Object.values(demoRowCounts(300000)).reduce((a, b) => a + b, 0) / 300000;
const records = Math.round(totalRows / perRecord);
const dir = args.dir ?? mkdtempSync(join(tmpdir(), 'scriptorium-dedup-'));
const log = (...m) => { if (!args.json) console.log(...m); };

const settings = {};
if (args['chunk-bytes']) settings.chunkBytes = Number(args['chunk-bytes']);
if (args['min-chunk-bytes']) settings.minChunkBytes = Number(args['min-chunk-bytes']);
if (args['pack-bytes']) settings.packBytes = Number(args['pack-bytes']);
if (args.level) settings.compressionLevel = Number(args.level);

const base = join(dir, 'base.db');
for (const s of ['', '-wal', '-shm', '-journal']) rmSync(base + s, { force: true });
const t0 = Date.now();
const rows = createDemoDatabase(base, { records });
log(`demo database: ${rows} rows (${records} registrations), ${(statSync(base).size / 1e6).toFixed(1)} MB, ${Date.now() - t0} ms`);

try {
  const result = await runDedup({ base, dir: join(dir, 'work'), settings, keep: args.keep, log });
  if (args.json) console.log(JSON.stringify({ records, ...result }, null, 2));
} finally {
  if (!args.keep && !args.dir) rmSync(dir, { recursive: true, force: true });
}
