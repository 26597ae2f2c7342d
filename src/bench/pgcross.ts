/**
 * The benchmark's `pgcross` section (issue 16): the same SQLite demo database loaded into PostgreSQL by
 * pgloader (Debian package `pgloader`) and by scriptorium's export | import pipeline, timed in the same
 * run (each into a fresh database), and a fidelity comparison: a small SQLite database of edge values
 * loaded by both, each value as PostgreSQL then holds it against the exact form.
 *
 * The server comes from `--pg-url` (or SCRIPTORIUM_BENCH_PG_URL); databases are created and dropped
 * with `psql` on it. Without a server, psql or pgloader the section says so and skips.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { cliNodeFlags } from '../cli/node-flags.js';
import { createDemoDatabase } from '../demo/demo-data.js';
import { redact } from '../monitor/redact.js';
import { CLI_PATH } from './cases.js';
import { runTimed } from './process.js';
import { median } from './stats.js';

/** One loader's timed runs of the demo database. */
export interface PgcrossRun {
  id: 'pgloader' | 'scriptorium';
  label: string;
  runsMs: number[];
  medianSeconds: number;
  peakRssBytes: number | null;
}

/** One edge value of the fidelity comparison, as each loader leaves it in PostgreSQL. */
export interface PgcrossFidelity {
  case: string;
  sqlite: string;
  exact: string;
  pgloader: string;
  scriptorium: string;
  lossy: string;
}

export interface PgcrossReport {
  /** Why the section did not run, when it did not. */
  skipped?: string;
  server?: string;
  pgloaderVersion?: string;
  records?: number;
  rows?: number;
  runs?: PgcrossRun[];
  /** scriptorium's time over pgloader's (medians). */
  ratio?: number;
  fidelity?: PgcrossFidelity[];
  /** What scriptorium's import without --allow-lossy said of the fidelity database. */
  refusal?: string;
}

/** The edge cases: name, SQLite column type, the SQL of its value, and PostgreSQL's text of it when carried exactly. */
const CASES: [string, string, string, string][] = [
  ['64-bit integer (max)', 'INTEGER', '9223372036854775807', 'bigint 9223372036854775807'],
  ['64-bit integer (min)', 'INTEGER', '-9223372036854775808', 'bigint -9223372036854775808'],
  ['REAL 0.1 (double)', 'REAL', '0.1', 'double precision 0.1'],
  ['REAL 1e300', 'REAL', '1e300', 'double precision 1e+300'],
  ['REAL 1/3 (17 digits)', 'REAL', '1.0/3', 'double precision 0.3333333333333333'],
  ['REAL 1.5 in an INTEGER column', 'INTEGER', '1.5', '(a REAL: no bigint holds it)'],
  ["text 'five' in an INTEGER column", 'INTEGER', "'five'", '(text: no bigint holds it)'],
  ['BLOB', 'BLOB', "X'00FF'", 'bytea \\x00ff'],
  ['BLOB in a TEXT column', 'TEXT', "X'00FF'", '(a BLOB: no text holds it)'],
  ['Unicode text', 'TEXT', "'สมชาย 😀 Zoë'", 'text สมชาย 😀 Zoë'],
  ['NUL in text', 'TEXT', "'a' || char(0) || 'b'", '(PostgreSQL text cannot hold NUL)'],
  ['DECIMAL(10,2) 12.5', 'DECIMAL(10,2)', '12.5', 'numeric 12.5'],
  ['BOOLEAN 1', 'BOOLEAN', '1', 'boolean true'],
  ['date as text', 'DATE', "'2024-02-29'", 'text 2024-02-29'],
  ['integer in an untyped column', '', '7', '(an integer in a column of no type)'],
];

const table = (i: number): string => `c${String(i + 1).padStart(2, '0')}`;

function fidelityDatabase(file: string): void {
  fs.rmSync(file, { force: true });
  const db = new Database(file);
  try {
    CASES.forEach(([, type, value], i) => db.exec(`CREATE TABLE ${table(i)} (id INTEGER PRIMARY KEY, v ${type}); INSERT INTO ${table(i)} VALUES (1, ${value});`));
  } finally {
    db.close();
  }
}

/** A database URL on the server of `url`. */
function dbUrl(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

function psql(url: string, sql: string): { ok: boolean; out: string } {
  const r = spawnSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql], { encoding: 'utf8' });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim() || (r.stderr ?? '').trim() };
}

function freshDatabase(server: string, name: string): string {
  psql(server, `DROP DATABASE IF EXISTS ${name}`);
  const r = psql(server, `CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8'`);
  if (!r.ok) throw new Error(`pgcross: cannot create database ${name}: ${redact(r.out)}`);
  return dbUrl(server, name);
}

/** Each case's value as the database at `url` holds it: `type text`, or what went wrong. */
function readCases(url: string): string[] {
  return CASES.map((_, i) => {
    const r = psql(url, `SELECT pg_typeof(v)::text || ' ' || coalesce(v::text, 'NULL') FROM ${table(i)}`);
    return r.ok ? r.out || '(no row: dropped)' : '(not loaded)';
  });
}

function available(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).split('\n')[0]!.trim() : undefined;
}

/** Runs the section: `repeat` loads by each loader of a demo database of `records` registrations. */
export async function runPgcross(o: { workDir: string; records: number; repeat: number; pgUrl?: string; log: (s: string) => void }): Promise<PgcrossReport> {
  const server = o.pgUrl ?? process.env.SCRIPTORIUM_BENCH_PG_URL;
  if (!server) return { skipped: 'no PostgreSQL server given (--pg-url or SCRIPTORIUM_BENCH_PG_URL)' };
  const pgloaderVersion = available('pgloader', ['--version']);
  if (!pgloaderVersion) return { skipped: 'pgloader is not installed (Debian package pgloader)' };
  if (!available('psql', ['--version'])) return { skipped: 'psql is not installed (Debian package postgresql-client)' };
  const version = psql(server, 'SHOW server_version');
  if (!version.ok) return { skipped: `the PostgreSQL server at ${redact(server)} does not answer: ${redact(version.out)}` };
  fs.mkdirSync(o.workDir, { recursive: true });
  const demo = path.join(o.workDir, `pgcross-demo-${o.records}.db`);
  if (!fs.existsSync(demo)) createDemoDatabase(demo, { records: o.records });
  const rows = Number(new Database(demo, { readonly: true }).prepare("SELECT (SELECT count(*) FROM regs) + (SELECT count(*) FROM reg_additional_info) + (SELECT count(*) FROM stays) + (SELECT count(*) FROM app_settings) + (SELECT count(*) FROM maps) + (SELECT count(*) FROM rooms) + (SELECT count(*) FROM room_bookings) AS n").pluck().get());
  const node = [process.execPath, ...cliNodeFlags(), CLI_PATH].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  const quote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`;
  const runs: PgcrossRun[] = [
    { id: 'pgloader', label: 'pgloader sqlite:///demo.db postgresql://…', runsMs: [], medianSeconds: 0, peakRssBytes: null },
    { id: 'scriptorium', label: 'scriptorium export demo.db -f ndjson -o - | scriptorium import - --into postgresql://…', runsMs: [], medianSeconds: 0, peakRssBytes: null },
  ];
  o.log(`pgcross: ${rows.toLocaleString('en-US')} rows into PostgreSQL ${version.out} by pgloader and by scriptorium, ${o.repeat}× each`);
  for (let round = 0; round < o.repeat; round++) {
    for (const run of round % 2 === 0 ? runs : [...runs].reverse()) {
      const target = freshDatabase(server, `pgcross_${run.id}`);
      const spec =
        run.id === 'pgloader'
          ? { cmd: 'pgloader', args: ['--quiet', `sqlite://${demo}`, target] }
          : { cmd: 'bash', args: ['-c', `set -o pipefail; ${node} export ${quote(demo)} -f ndjson -o - -q | ${node} import - --into ${quote(target)} -q`] };
      const r = await runTimed(spec);
      run.runsMs.push(r.wallMs);
      if (r.peakRssBytes !== null) run.peakRssBytes = Math.max(run.peakRssBytes ?? 0, r.peakRssBytes);
      o.log(`  ${run.id}: ${(r.wallMs / 1000).toFixed(1)} s`);
    }
  }
  for (const run of runs) run.medianSeconds = median(run.runsMs) / 1000;

  // Fidelity: the edge values by each loader (scriptorium with and without --allow-lossy).
  const fid = path.join(o.workDir, 'pgcross-fidelity.db');
  fidelityDatabase(fid);
  const sqliteValues = (() => {
    const db = new Database(fid, { readonly: true });
    try {
      return CASES.map((_, i) => String(db.prepare(`SELECT typeof(v) || ' ' || CASE WHEN typeof(v) = 'blob' THEN 'X''' || hex(v) || '''' ELSE CAST(v AS TEXT) END FROM ${table(i)}`).pluck().get()).replace(/\0/g, '\\0'));
    } finally {
      db.close();
    }
  })();
  const pgl = freshDatabase(server, 'pgcross_fid_pgloader');
  spawnSync('pgloader', ['--quiet', `sqlite://${fid}`, pgl], { encoding: 'utf8' });
  const strict = freshDatabase(server, 'pgcross_fid_strict');
  const exportFile = path.join(o.workDir, 'pgcross-fidelity.ndjson');
  spawnSync(process.execPath, [...cliNodeFlags(), CLI_PATH, 'export', fid, '-f', 'ndjson', '-o', exportFile, '--force', '-q']);
  const refused = spawnSync(process.execPath, [...cliNodeFlags(), CLI_PATH, 'import', exportFile, '--into', strict, '-q'], { encoding: 'utf8' });
  const lossyDb = freshDatabase(server, 'pgcross_fid_lossy');
  spawnSync(process.execPath, [...cliNodeFlags(), CLI_PATH, 'import', exportFile, '--into', lossyDb, '--allow-lossy', '-q'], { encoding: 'utf8' });
  const [byPgloader, byStrict, byLossy] = [readCases(pgl), readCases(strict), readCases(lossyDb)];
  const reported = refused.stderr ?? '';
  const fidelity = CASES.map(([name, , , exact], i) => ({
    case: name,
    sqlite: sqliteValues[i]!,
    exact,
    pgloader: byPgloader[i]!,
    // The strict import is all or nothing: a case it reports is shown as reported.
    scriptorium: reported.includes(`table "${table(i)}"`) ? 'reported (E_LOSSY)' : byStrict[i] === '(not loaded)' && refused.status !== 0 ? '(exact; whole import refused)' : byStrict[i]!,
    lossy: byLossy[i]!,
  }));
  for (const name of ['pgcross_pgloader', 'pgcross_scriptorium', 'pgcross_fid_pgloader', 'pgcross_fid_strict', 'pgcross_fid_lossy']) psql(server, `DROP DATABASE IF EXISTS ${name}`);
  const [pgloaderRun, ours] = runs;
  return {
    server: `PostgreSQL ${version.out}`,
    pgloaderVersion,
    records: o.records,
    rows,
    runs,
    ratio: ours!.medianSeconds / pgloaderRun!.medianSeconds,
    fidelity,
    refusal: refused.status === 0 ? 'accepted' : (reported.match(/error (E_\w+)/)?.[1] ?? `exit ${refused.status}`),
  };
}

/** The section in Markdown. */
export function pgcrossMarkdown(r: PgcrossReport): string {
  const out = ['## SQLite → PostgreSQL: scriptorium against pgloader (pgcross)', ''];
  if (r.skipped) return [...out, `Not run: ${r.skipped}.`, ''].join('\n');
  const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  out.push(`${(r.rows ?? 0).toLocaleString('en-US')} rows of the demo schema (N=${(r.records ?? 0).toLocaleString('en-US')}) into a fresh database of ${r.server} each run; ${r.pgloaderVersion}. Medians of the same run, on a shared, loaded machine.`, '');
  out.push('| loader | median s | runs (s) | peak RSS MB |', '| --- | ---: | --- | ---: |');
  for (const run of r.runs ?? []) out.push(`| ${esc(run.label)} | ${run.medianSeconds.toFixed(2)} | ${run.runsMs.map((v) => (v / 1000).toFixed(2)).join(', ')} | ${run.peakRssBytes === null ? '?' : (run.peakRssBytes / 1e6).toFixed(0)} |`);
  out.push('', `scriptorium / pgloader: ${r.ratio?.toFixed(2)}× the time (scriptorium also reads every table back and compares it with what it sent, and creates the primary keys; pgloader also builds the SQLite indexes and foreign keys).`, '');
  out.push('### Fidelity: what each carries exactly', '');
  out.push(`Each edge value in its own SQLite table, as PostgreSQL then holds it (\`pg_typeof(v) v::text\`). scriptorium without --allow-lossy: ${r.refusal === 'E_LOSSY' ? 'the import is refused (E_LOSSY) and reports every case it cannot carry exactly, writing nothing' : r.refusal}.`, '');
  out.push('| case | SQLite | exact | pgloader | scriptorium | scriptorium --allow-lossy |', '| --- | --- | --- | --- | --- | --- |');
  for (const f of r.fidelity ?? []) out.push(`| ${esc(f.case)} | ${esc(f.sqlite)} | ${esc(f.exact)} | ${esc(f.pgloader)} | ${esc(f.scriptorium)} | ${esc(f.lossy)} |`);
  out.push('');
  return out.join('\n');
}
