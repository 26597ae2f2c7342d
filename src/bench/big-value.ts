/**
 * The benchmark's large-value case (issue 13): a database of one row holding one TEXT value of
 * `valueBytes` bytes goes through export ndjson, import of that file, backup and restore, once each, as
 * separate processes; so does one of a BLOB of that size that does not compress (random bytes: its hex
 * is twice its size, its pack as large as the value), through export and import sql as well, and
 * verify --drill. Each run's time and peak RSS are set against the bound 1.5 × the value + 100 MB.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { cliNodeFlags } from '../cli/node-flags.js';
import { init } from '../repository/index.js';
import { CLI_PATH } from './cases.js';
import { removeDatabase, runTimed } from './process.js';
import type { TargetCheck } from './stats.js';

/** The value's size in the default run: 300 MB. */
export const BIG_VALUE_BYTES = 300e6;
/** The value's size in the `--quick` smoke run. */
export const QUICK_BIG_VALUE_BYTES = 16e6;

/** One command's run on the large-value database. */
export interface BigValueRun {
  id: string;
  label: string;
  seconds: number;
  /** Peak RSS in bytes, or null without GNU time. */
  peakRssBytes: number | null;
}

/** The large-value case as reported. */
export interface BigValueReport {
  valueBytes: number;
  /** 1.5 × valueBytes + 100 MB. */
  boundBytes: number;
  /** The TEXT value's runs (the issue's targets). */
  runs: BigValueRun[];
  /** The BLOB's runs (shown beside them; the same bound). */
  blobRuns?: BigValueRun[];
}

/**
 * The cached database of one TEXT value of `bytes` bytes (hex of random bytes: it does not compress
 * away, and every path carries it as it is).
 */
function bigValueDatabase(workDir: string, bytes: number, kind: 'text' | 'blob' = 'text'): string {
  fs.mkdirSync(workDir, { recursive: true });
  const file = path.join(workDir, kind === 'text' ? `big-value-${bytes}.db` : `big-blob-${bytes}.db`);
  if (fs.existsSync(file)) return file;
  const tmp = `${file}.building-${process.pid}`;
  removeDatabase(tmp);
  const db = new Database(tmp);
  try {
    // The BLOB before another column: its row's record is built (a BLOB in the last column is written after it).
    db.exec(kind === 'text' ? 'CREATE TABLE big (id INTEGER PRIMARY KEY, note TEXT, v TEXT)' : 'CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB, note TEXT)');
    if (kind === 'text') db.prepare('INSERT INTO big VALUES (1, ?, hex(randomblob(?)))').run('one large value', Math.ceil(bytes / 2));
    else db.prepare('INSERT INTO big VALUES (1, randomblob(?), ?)').run(bytes, 'one large BLOB');
  } finally {
    db.close();
  }
  fs.renameSync(tmp, file);
  return file;
}

/** Runs the large-value case with a value of `valueBytes` bytes, in `workDir`. */
export async function runBigValue(o: { workDir: string; valueBytes: number; log: (s: string) => void }): Promise<BigValueReport> {
  const db = bigValueDatabase(o.workDir, o.valueBytes);
  const blob = bigValueDatabase(o.workDir, o.valueBytes, 'blob');
  const dir = path.join(o.workDir, `big-value-run-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const f = (name: string): string => path.join(dir, name);
  const cli = (...args: string[]) => ({ cmd: process.execPath, args: [...cliNodeFlags(), CLI_PATH, ...args, '--json'] });
  const steps: Array<{ id: string; label: string; spec: ReturnType<typeof cli> }> = [
    { id: 'export-ndjson', label: 'export ndjson', spec: cli('export', db, '--format', 'ndjson', '-o', f('out.ndjson')) },
    { id: 'import-ndjson', label: 'import ndjson', spec: cli('import', f('out.ndjson'), '--into', f('import.db')) },
    { id: 'backup', label: 'backup', spec: cli('backup', db, '--repo', f('repo')) },
    { id: 'restore', label: 'restore', spec: cli('restore', 'latest', '--repo', f('repo'), '--into', f('restore.db')) },
    { id: 'blob-export-sql', label: 'BLOB: export sql', spec: cli('export', blob, '--format', 'sql', '-o', f('blob.sql')) },
    { id: 'blob-import-sql', label: 'BLOB: import sql', spec: cli('import', f('blob.sql'), '--into', f('blob-import.db')) },
    { id: 'blob-backup', label: 'BLOB: backup', spec: cli('backup', blob, '--repo', f('blob-repo')) },
    { id: 'blob-restore', label: 'BLOB: restore', spec: cli('restore', 'latest', '--repo', f('blob-repo'), '--into', f('blob-restore.db')) },
    { id: 'blob-drill', label: 'BLOB: verify --drill', spec: cli('verify', '--repo', f('blob-repo'), '--drill') },
  ];
  try {
    await init(f('repo'));
    await init(f('blob-repo'));
    const runs: BigValueRun[] = [];
    const blobRuns: BigValueRun[] = [];
    for (const step of steps) {
      const r = await runTimed(step.spec);
      (step.id.startsWith('blob-') ? blobRuns : runs).push({ id: step.id, label: step.label, seconds: r.wallMs / 1000, peakRssBytes: r.peakRssBytes });
      if (step.id === 'blob-import-sql') fs.rmSync(f('blob.sql'), { force: true }); // (its disk, before the repository's)
      o.log(`  one ${(o.valueBytes / 1e6).toFixed(0)} MB value: ${step.label} ${(r.wallMs / 1000).toFixed(1)} s, peak RSS ${r.peakRssBytes === null ? '?' : (r.peakRssBytes / 1e6).toFixed(0)} MB`);
    }
    return { valueBytes: o.valueBytes, boundBytes: 1.5 * o.valueBytes + 100e6, runs, blobRuns };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Issue 13's memory target: every path's peak RSS at most 1.5 × the value + 100 MB. */
export function bigValueTargets(r: BigValueReport): TargetCheck[] {
  return r.runs
    .filter((run) => run.peakRssBytes !== null)
    .map((run) => ({
      issue: 13,
      name: `peak RSS of ${run.label}, one ${(r.valueBytes / 1e6).toFixed(0)} MB value`,
      required: `≤ ${(r.boundBytes / 1e6).toFixed(0)} MB (1.5× + 100 MB)`,
      measured: `${(run.peakRssBytes! / 1e6).toFixed(1)} MB`,
      met: run.peakRssBytes! <= r.boundBytes,
    }));
}
