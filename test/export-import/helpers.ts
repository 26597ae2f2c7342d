/** Shared fixtures for the export/import tests: temp dirs, round trips through real files, the CLI. */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, expect } from 'vitest';
import { compareDatabases } from '../../src/engines/sqlite/compare.js';
import { exportTo } from '../../src/export.js';
import { importFrom } from '../../src/import.js';
import type { CodecName } from '../../src/codecs/codec.js';
import type { FormatName } from '../../src/formats/format.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/cli/main.js');
export const SQLITE3 = '/usr/bin/sqlite3';

export interface Variant {
  format: FormatName;
  compress: CodecName;
}

export const FORMATS: FormatName[] = ['json', 'ndjson', 'sql'];

/** Every format, plain, gzip and zstd. */
export const VARIANTS: Variant[] = FORMATS.flatMap((format) =>
  (['none', 'gzip', 'zstd'] as CodecName[]).map((compress) => ({ format, compress })),
);

export const variantName = (v: Variant): string => (v.compress === 'none' ? v.format : `${v.format}+${v.compress}`);

/** A fresh temporary directory; call the returned cleanup (or `removeDir`) when done. */
export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `scriptorium-${tag}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Creates a database file with `build` run inside one connection (BigInt-safe). */
export function makeDb(file: string, build: (db: Database.Database) => void): string {
  const db = new Database(file);
  db.defaultSafeIntegers(true);
  db.pragma('synchronous = OFF'); // test data need not survive a power cut: no fsync per INSERT
  db.pragma('journal_mode = MEMORY');
  try {
    build(db);
  } finally {
    db.close();
  }
  return file;
}

/** Opens a database read-only with BigInt integers, runs `fn`, closes it. */
export function withDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.defaultSafeIntegers(true);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/**
 * Exports `source` in `variant` to a file in `dir`, imports it into a fresh database, and asserts that
 * every table was verified by its digest and that `compareDatabases` finds no difference. Returns the
 * restored database's path.
 */
export async function roundTrip(source: string, variant: Variant, dir: string): Promise<string> {
  const name = variantName(variant);
  const file = path.join(dir, `export-${name}`);
  const exported = await exportTo(source, { format: variant.format, compress: variant.compress, output: file });
  expect(exported.path).toBe(file);
  expect(fs.statSync(file).size).toBe(exported.bytes);
  const into = path.join(dir, `restored-${name}.db`);
  const imported = await importFrom(file, { into });
  expect(imported.format, name).toBe(variant.format);
  expect(imported.compression, name).toBe(variant.compress);
  expect(imported.rows, name).toBe(exported.rows);
  for (const t of imported.tables) expect(t.verified, `${name}: table ${t.name} verified`).toBe(true);
  expect(compareDatabases(source, into), name).toEqual([]);
  return into;
}

let cliCwd: string | undefined;
/**
 * Where the CLI runs unless a test says otherwise: a private temp dir, not the repository, because every
 * CLI operation appends to `./backups/.scriptorium-history.jsonl` (the monitor's history).
 */
function defaultCwd(): string {
  cliCwd ??= fs.mkdtempSync(path.join(os.tmpdir(), 'scriptorium-cli-cwd-'));
  return cliCwd;
}
afterAll(() => {
  if (cliCwd) fs.rmSync(cliCwd, { recursive: true, force: true });
  cliCwd = undefined;
});

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

/** Runs the built CLI (dist/) synchronously. */
export function cli(args: string[], opts: { cwd?: string; input?: Buffer | string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: opts.cwd ?? defaultCwd(),
    input: opts.input,
    maxBuffer: 64 << 20,
    env: opts.env ?? { ...process.env, NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), stdoutBytes: r.stdout };
}

/** Runs the built CLI without blocking the event loop. */
export function cliAsync(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? defaultCwd(), env: opts.env ?? { ...process.env, NO_COLOR: '1' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes });
    });
  });
}

/** Runs the sqlite3 shell on `db` with `input` on stdin; throws with its stderr on failure. */
export function sqlite3Shell(args: string[], input?: string | Buffer): Buffer {
  const r = spawnSync(SQLITE3, args, { input, maxBuffer: 256 << 20 });
  if (r.status !== 0 || r.stderr.length > 0) {
    throw new Error(`sqlite3 ${args.join(' ')} failed (${r.status}): ${r.stderr.toString('utf8')}`);
  }
  return r.stdout;
}

/** A row's value and storage class, as SQLite reports it. */
export function typed(db: Database.Database, sql: string, ...params: unknown[]): { t: string; v: unknown }[] {
  return db.prepare(sql).all(...params) as { t: string; v: unknown }[];
}

/**
 * Runs `fn` while a child process commits to the {@link ledgerDb} `db` of `rows` rows, then kills it.
 * Each transaction inserts one row into debit and one into credit (a consistent snapshot has equal
 * counts), moves an amount between two far-apart debit rows (only a mixed snapshot sees half a move),
 * and sets user_version to the number of transactions so far. Small transactions without fsync, so that
 * as many commits as possible land between two connections' first reads; the writer stops by itself
 * after 60 s, should the test die without killing it.
 */
export async function whileLedgerCommits<T>(db: string, rows: number, fn: () => Promise<T>): Promise<T> {
  const script = `
    const Database = require(${JSON.stringify(path.join(ROOT, 'node_modules/better-sqlite3'))});
    const db = new Database(${JSON.stringify(db)});
    db.pragma('busy_timeout = 10000');
    db.pragma('synchronous = OFF');
    const d = db.prepare("INSERT INTO debit(amount, note) VALUES (1, 'concurrent')");
    const c = db.prepare("INSERT INTO credit(amount, note) VALUES (1, 'concurrent')");
    const move = db.prepare("UPDATE debit SET amount = amount + ? WHERE id = ?");
    let i = 0;
    const tx = db.transaction(() => {
      d.run(); c.run();
      const from = 1 + (i * 7919) % ${rows}, to = 1 + (i * 7919 + ${Math.floor(rows / 2)}) % ${rows}; i++;
      move.run(-1000, from); move.run(1000, to);
      db.pragma('user_version = ' + i);
    });
    const end = Date.now() + 60000;
    process.stdout.write('ready\\n');
    // A breath of 1 ms every 20 commits: without any, the export's writer hold (BEGIN IMMEDIATE, 0.5 s of
    // retries) could miss every gap on a loaded machine, and the export would rightly read on one
    // connection only, which these tests are not about. Commits still land all through every export.
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let n = 1; Date.now() < end; n++) {
      tx();
      if (n % 20 === 0) Atomics.wait(pause, 0, 0, 1);
    }
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
    });
    return await fn();
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  }
}

/**
 * Two tables, debit and credit, that every writer transaction in the consistency tests grows together:
 * a consistent snapshot has equal counts.
 */
export function ledgerDb(file: string, rows: number, journal: 'wal' | 'delete' = 'wal'): string {
  return makeDb(file, (db) => {
    db.pragma(`journal_mode = ${journal}`);
    db.exec('CREATE TABLE debit(id INTEGER PRIMARY KEY, amount INTEGER, note TEXT); CREATE TABLE credit(id INTEGER PRIMARY KEY, amount INTEGER, note TEXT)');
    const d = db.prepare('INSERT INTO debit(amount, note) VALUES (?, ?)');
    const c = db.prepare('INSERT INTO credit(amount, note) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < rows; i++) {
        d.run(BigInt(i), 'x'.repeat(50));
        c.run(BigInt(i), 'y'.repeat(50));
      }
    })();
  });
}
