#!/usr/bin/env node
/**
 * Deduplication benchmark for the backup repository (issue 4): how many bytes a snapshot stores after
 * 1% of the demo database's rows were updated (uniformly at random, or in clustered runs), or 1% new
 * rows were appended, relative to the first snapshot.
 *
 *   npm run build && node bench/dedup.mjs [--rows 1000000] [--chunk-bytes 1024] [--dir /tmp/x] [--json]
 *
 * Every scenario starts from the same first snapshot; "stored" is what the backup added to the
 * repository (pack files + index file + manifest), measured from the store, not estimated.
 */
import { copyFileSync, mkdtempSync, rmSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { createDemoDatabase, demoRowCounts, prng } from '../dist/demo/demo-data.js';
import { Repository } from '../dist/repository/repository.js';
import { backup } from '../dist/repository/backup.js';

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

/** The column each table's update touches, and a new value for it. */
const UPDATES = {
  regs: "updatedAt = '2026-01-01T00:00:00.000', status = iif(status = 'A', 'I', 'A')",
  reg_additional_info: "updatedAt = '2026-01-01T00:00:00.000', notes = 'updated'",
  stays: "status = 'completed', note = 'checked out'",
  app_settings: "value = 'true', updated_at = '2026-01-01 00:00:00'",
  maps: "updated_at = '2026-01-01T00:00:00.000'",
  rooms: "status = 'occupied', updated_at = '2026-01-01T00:00:00.000'",
  room_bookings: "status = 'confirmed', updated_at = '2026-01-01T00:00:00.000'",
};

function tables(db) {
  return db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").pluck().all();
}

/** Updates 1% of each table's rows: `uniform` picks rows at random, `clustered` in 10 runs per table. */
function update(file, pattern, seed) {
  const rnd = prng(seed);
  const db = new Database(file);
  let changed = 0;
  db.transaction(() => {
    for (const t of tables(db)) {
      const rowids = db.prepare(`SELECT rowid FROM "${t}" ORDER BY rowid`).pluck().all();
      const n = Math.max(1, Math.round(rowids.length / 100));
      const pick = new Set();
      if (pattern === 'uniform') {
        while (pick.size < n) pick.add(rowids[Math.floor(rnd() * rowids.length)]);
      } else {
        const runs = Math.min(10, n);
        for (let r = 0; r < runs; r++) {
          const len = Math.ceil(n / runs);
          const start = Math.floor(rnd() * Math.max(1, rowids.length - len));
          for (let i = start; i < start + len && pick.size < n; i++) pick.add(rowids[i]);
        }
      }
      const stmt = db.prepare(`UPDATE "${t}" SET ${UPDATES[t]} WHERE rowid = ?`);
      for (const id of pick) changed += stmt.run(id).changes;
    }
  })();
  db.close();
  return changed;
}

/** Appends 1% new rows to each table (copies of existing rows with new keys). */
function append(file, seed) {
  const rnd = prng(seed);
  const db = new Database(file);
  let added = 0;
  db.transaction(() => {
    for (const t of tables(db)) {
      const count = db.prepare(`SELECT count(*) FROM "${t}"`).pluck().get();
      const n = Math.max(1, Math.round(count / 100));
      const cols = db.prepare(`SELECT name, pk FROM pragma_table_info('${t}')`).all();
      const pk = cols.find((c) => c.pk === 1).name;
      const others = cols.filter((c) => c.name !== pk).map((c) => `"${c.name}"`);
      const textKey = t === 'regs' || t === 'app_settings';
      const exprs = others.map((c) => (c === '"visitId"' ? "'N' || :i" : c));
      const stmt = db.prepare(
        `INSERT INTO "${t}" ("${pk}", ${others.join(', ')}) SELECT :key, ${exprs.join(', ')} FROM "${t}" WHERE rowid = :src`,
      );
      const max = db.prepare(`SELECT max(rowid) FROM "${t}"`).pluck().get();
      for (let i = 0; i < n; i++) {
        const key = textKey ? `${t === 'regs' ? '9' : 'k'}${String(Math.floor(rnd() * 1e12)).padStart(12, '0')}${i}` : null;
        added += stmt.run({ key, src: 1 + Math.floor(rnd() * max), ...(t === 'reg_additional_info' ? { i } : {}) }).changes;
      }
    }
  })();
  db.close();
  return added;
}

function dirBytes(path) {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return total;
}

const settings = {};
if (args['chunk-bytes']) settings.chunkBytes = Number(args['chunk-bytes']);
if (args['min-chunk-bytes']) settings.minChunkBytes = Number(args['min-chunk-bytes']);
if (args['pack-bytes']) settings.packBytes = Number(args['pack-bytes']);
if (args.level) settings.compressionLevel = Number(args.level);

const base = join(dir, 'base.db');
let t0 = Date.now();
const rows = createDemoDatabase(base, { records });
log(`demo database: ${rows} rows (${records} registrations), ${(statSync(base).size / 1e6).toFixed(1)} MB, ${Date.now() - t0} ms`);

const repoDir = join(dir, 'repo');
await (await Repository.init(repoDir, settings)).close();
t0 = Date.now();
const first = await backup(base, repoDir);
const firstBytes = dirBytes(repoDir) - statSync(join(repoDir, 'config')).size;
log(`first snapshot: ${first.stats.chunks} chunks, ${(first.stats.bytes / 1e6).toFixed(1)} MB logical, ` +
  `${(firstBytes / 1e6).toFixed(2)} MB stored, ${Date.now() - t0} ms`);

const results = [{ scenario: 'first', rowsChanged: rows, storedBytes: firstBytes, ratio: 1 }];
const scenarios = [
  ['unchanged', (f) => 0],
  ['update 1% uniform', (f) => update(f, 'uniform', 1)],
  ['update 1% clustered', (f) => update(f, 'clustered', 2)],
  ['append 1%', (f) => append(f, 3)],
];
for (const [name, mutate] of scenarios) {
  const file = join(dir, `${name.replace(/\W+/g, '-')}.db`);
  copyFileSync(base, file);
  const changed = mutate(file);
  const before = dirBytes(repoDir);
  t0 = Date.now();
  const snap = await backup(file, repoDir);
  const stored = dirBytes(repoDir) - before;
  results.push({
    scenario: name, rowsChanged: changed, newChunks: snap.stats.newChunks, chunks: snap.stats.chunks,
    storedBytes: stored, manifestBytes: snap.manifestBytes, ratio: stored / firstBytes, ms: Date.now() - t0,
  });
  log(`${name.padEnd(20)} ${String(changed).padStart(7)} rows changed: ${String(snap.stats.newChunks).padStart(6)} new chunks, ` +
    `${(stored / 1e6).toFixed(3)} MB stored (manifest ${(snap.manifestBytes / 1e3).toFixed(1)} kB) = ` +
    `${(100 * stored / firstBytes).toFixed(2)}% of the first snapshot, ${Date.now() - t0} ms`);
  rmSync(file, { force: true });
}
if (args.json) console.log(JSON.stringify({ rows, records, settings, results }, null, 2));
if (!args.keep && !args.dir) rmSync(dir, { recursive: true, force: true });
