/** Shared fixtures for repository tests: temp directories and small real SQLite databases. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach } from 'vitest';
import { createDemoDatabase } from '../../src/demo/demo-data.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed after the test. */
export function tempDir(tag = 'repo'): string {
  const dir = mkdtempSync(join(tmpdir(), `scriptorium-${tag}-`));
  dirs.push(dir);
  return dir;
}

/** The demo database with `records` registrations. */
export function demoDb(dir: string, records = 300, name = 'demo.db'): string {
  const file = join(dir, name);
  createDemoDatabase(file, { records });
  return file;
}

/** A database with every hard value: BLOBs, 64-bit integers, -0.0, infinities, odd names, no-PK tables. */
export function fidelityDb(dir: string, name = 'fidelity.db'): string {
  const file = join(dir, name);
  const db = new Database(file);
  db.defaultSafeIntegers(true);
  db.exec(`
    PRAGMA user_version = 42; PRAGMA application_id = 1234;
    CREATE TABLE "we""ird table" ("select" INTEGER PRIMARY KEY AUTOINCREMENT, "col umn" TEXT, b BLOB, r REAL, anything);
    CREATE TABLE nokey (a, b);
    CREATE TABLE pairs (x TEXT, y INTEGER, v, PRIMARY KEY (x, y)) WITHOUT ROWID;
    CREATE INDEX idx_weird ON "we""ird table" ("col umn");
    CREATE VIEW v_pairs AS SELECT x, y FROM pairs;
    CREATE TRIGGER trg AFTER INSERT ON nokey BEGIN SELECT 1; END;
  `);
  const ins = db.prepare('INSERT INTO "we""ird table" ("col umn", b, r, anything) VALUES (?, ?, ?, ?)');
  const values: unknown[] = [9223372036854775807n, -9223372036854775808n, 'é😀\r\n"\\\u0000x', Buffer.from([0, 1, 255]), Buffer.alloc(0), null, 1.5, 0.1 + 0.2];
  for (let i = 0; i < 400; i++) {
    ins.run(i % 7 === 0 ? null : `text ${i} ${'ข'.repeat(i % 13)}`, i % 5 === 0 ? Buffer.from([i % 256, 0, 10, 13]) : null, i % 3 === 0 ? -0 : i / 7, values[i % values.length]);
  }
  db.exec("INSERT INTO \"we\"\"ird table\" (r) VALUES (9e999), (-9e999)");
  const nk = db.prepare('INSERT INTO nokey VALUES (?, ?)');
  for (let i = 0; i < 50; i++) nk.run(i % 2 ? 'dup' : null, i % 3);
  const pr = db.prepare('INSERT INTO pairs VALUES (?, ?, ?)');
  for (let i = 0; i < 120; i++) pr.run(`k${i % 11}`, BigInt(i), Buffer.from(`blob ${i}`));
  db.close();
  return file;
}

/** Digests of every table, computed by the engine (re-encoding each table from the file). */
export async function engineDigests(file: string): Promise<Record<string, string>> {
  const { SqliteSource } = await import('../../src/engines/sqlite/sqlite-source.js');
  const { DigestBuilder } = await import('../../src/core/encoding.js');
  const source = SqliteSource.open(file);
  try {
    const out: Record<string, string> = {};
    for (const table of source.schema.tables) {
      const d = new DigestBuilder('ndjson');
      for (const batch of source.batches(table, 'ndjson')) d.add(batch);
      const f = d.finish();
      out[table.name] = `${f.rows}:${f.sha256}`;
    }
    out['#meta'] = JSON.stringify(source.schema.meta) + JSON.stringify(source.schema.objects.map((o) => o.sql));
    return out;
  } finally {
    source.close();
  }
}
