// Helpers for the daemon's process tests: a folder with databases and a config, the CLI (dist/) as a
// real process, and waits on the journal.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JournalEntry } from '../../src/daemon/journal.js';
import type { OperationRecord } from '../../src/monitor/operation-record.js';
import { cliNodeFlags } from '../../src/cli/node-flags.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(ROOT, 'dist/cli/main.js');
/**
 * `node` and its arguments to run the CLI as the installed `scriptorium` runs (with the V8 flags of its
 * shebang): a process started as bare `node main.js` would not measure, or behave, like it.
 */
const node = (...args: string[]) => [...cliNodeFlags(CLI), CLI, ...args];

/** Fails early with a clear message when dist/ is missing (`npm test` builds it first). */
export function needDist(): void {
  if (!existsSync(join(ROOT, 'dist/daemon/job-worker.js'))) throw new Error('run `npm run build` first: the daemon tests run dist/');
}

/** A temporary folder; `cleanup` removes it. */
export function workDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'scriptorium-daemon-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }) };
}

/** A SQLite database of `rows` rows of `bytes` random bytes each, made by the sqlite3 shell. */
export function makeDb(file: string, rows: number, bytes = 100, table = 't'): void {
  const sql = `create table "${table.replace(/"/g, '""')}"(id integer primary key, v text); insert into "${table.replace(/"/g, '""')}"(v) select hex(randomblob(${bytes})) from generate_series(1, ${rows});`;
  const r = spawnSync('sqlite3', [file, sql], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
}

/** Runs the CLI to completion. */
export function cli(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, node(...args), { cwd, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI without blocking this process's event loop (needed when this process serves it HTTP). */
export function cliAsync(cwd: string, ...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, node(...args), { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A CLI process left running (the daemon, serve). */
export interface Running {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function start(cwd: string, ...args: string[]): Running {
  return startWith(cwd, {}, ...args);
}

/** {@link start} with extra environment variables. */
export function startWith(cwd: string, env: Record<string, string>, ...args: string[]): Running {
  const proc = spawn(process.execPath, node(...args), { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return { proc, output: () => out, exited };
}

export function journal(dir: string): JournalEntry[] {
  const file = join(dir, 'backups/.scriptorium-daemon.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalEntry);
}

export function history(dir: string): OperationRecord[] {
  const file = join(dir, 'backups/.scriptorium-history.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as OperationRecord);
}

/** Waits until `check` returns a truthy value (polled every 50 ms), or throws after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function writeConfig(dir: string, config: unknown): void {
  writeFileSync(join(dir, 'scriptorium.config.json'), JSON.stringify(config, null, 2));
}

export const ends = (entries: JournalEntry[]) => entries.filter((e): e is Extract<JournalEntry, { t: 'end' }> => e.t === 'end');
export const starts = (entries: JournalEntry[]) => entries.filter((e): e is Extract<JournalEntry, { t: 'start' }> => e.t === 'start');
