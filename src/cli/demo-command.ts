import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDemoDatabase } from '../demo/demo-data.js';
import { compareDatabases } from '../engines/sqlite/compare.js';
import { cliNodeFlags } from './node-flags.js';
import { formatBytes, formatCount, type OutputOptions } from './output.js';

interface Step {
  label: string;
  rows: number;
  bytes: number;
  seconds: number;
  peakRssBytes: number;
  identical?: boolean;
}

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

/** Runs the CLI in a child process (so its peak memory is its own) and returns its JSON summary. */
function cli(args: string[]): Promise<Record<string, unknown> & { peakRssBytes: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...cliNodeFlags(), CLI, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`scriptorium ${args.join(' ')} failed (${code}): ${err.trim()}`));
    });
  });
}

/** `scriptorium demo`: returns true when every restored database is identical to the source. */
export async function runDemo(opts: OutputOptions & { records: number; dir: string }): Promise<boolean> {
  const log = (s: string): void => {
    if (!opts.quiet && !opts.json) process.stderr.write(`${s}\n`);
  };
  fs.mkdirSync(opts.dir, { recursive: true });
  const db = path.join(opts.dir, 'guesthouse.db');
  for (const f of fs.readdirSync(opts.dir)) fs.rmSync(path.join(opts.dir, f), { force: true, recursive: true });
  log(`creating ${db} with ${formatCount(opts.records)} registrations…`);
  const t0 = performance.now();
  const rows = createDemoDatabase(db, { records: opts.records });
  log(`  ${formatCount(rows)} rows in 7 tables, ${formatBytes(fs.statSync(db).size)}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const steps: Step[] = [];
  const variants: [string, string[]][] = [
    ['json', ['--format', 'json']],
    ['ndjson', ['--format', 'ndjson']],
    ['sql', ['--format', 'sql']],
    ['ndjson+zstd', ['--format', 'ndjson', '--compress', 'zstd']],
    ['sql+gzip', ['--format', 'sql', '--compress', 'gzip']],
  ];
  let allIdentical = true;
  for (const [label, args] of variants) {
    const file = path.join(opts.dir, `guesthouse.${label.replace('+zstd', '.zst').replace('+gzip', '.gz').replace(/^(json|ndjson|sql)/, '$1')}`);
    log(`export ${label} → ${file}`);
    const ex = await cli(['export', db, ...args, '-o', file]);
    steps.push({ label: `export ${label}`, rows: Number(ex.rows), bytes: Number(ex.bytes), seconds: Number(ex.durationMs) / 1000, peakRssBytes: ex.peakRssBytes });
    const into = path.join(opts.dir, `restored-${label.replace('+', '-')}.db`);
    log(`import ${file} → ${into}`);
    const im = await cli(['import', file, '--into', into]);
    const diffs = compareDatabases(db, into);
    const identical = diffs.length === 0;
    allIdentical &&= identical;
    for (const d of diffs.slice(0, 5)) log(`  DIFFERENT: ${d}`);
    steps.push({ label: `import ${label}`, rows: Number(im.rows), bytes: Number(im.bytes), seconds: Number(im.durationMs) / 1000, peakRssBytes: im.peakRssBytes, identical });
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ database: db, rows, steps, identical: allIdentical }, null, 2)}\n`);
  else if (!opts.quiet) process.stdout.write(`${renderTable(steps)}\n${allIdentical ? 'every restored database is identical to the source (schema, metadata, every value)' : 'SOME RESTORED DATABASES DIFFER (see above)'}\n`);
  return allIdentical;
}

/**
 * `scriptorium demo --engine postgres`: the demo database is built in SQLite, loaded into PostgreSQL
 * (`into`: a URL, or - for the PG* variables; an empty database) by export | import, then exported
 * from PostgreSQL in every format, and the ndjson and json exports imported back into SQLite files.
 * Every import compares each table with the file's digest and reads it back: `identical` means every
 * table of that step was verified value by value. Returns true when every step was.
 */
export async function runPostgresDemo(opts: OutputOptions & { records: number; dir: string; into: string }): Promise<boolean> {
  const log = (s: string): void => {
    if (!opts.quiet && !opts.json) process.stderr.write(`${s}\n`);
  };
  fs.mkdirSync(opts.dir, { recursive: true });
  const db = path.join(opts.dir, 'guesthouse.db');
  for (const f of fs.readdirSync(opts.dir)) fs.rmSync(path.join(opts.dir, f), { force: true, recursive: true });
  log(`creating ${db} with ${formatCount(opts.records)} registrations…`);
  const rows = createDemoDatabase(db, { records: opts.records });
  const pg = ['--engine', 'postgres'];
  const steps: Step[] = [];
  const verified = (r: Record<string, unknown>): boolean => Array.isArray(r.tables) && (r.tables as { verified: boolean }[]).every((t) => t.verified);
  const step = (label: string, r: Record<string, unknown> & { peakRssBytes: number }, identical?: boolean): void => {
    steps.push({ label, rows: Number(r.rows), bytes: Number(r.bytes), seconds: Number(r.durationMs) / 1000, peakRssBytes: r.peakRssBytes, ...(identical === undefined ? {} : { identical }) });
  };
  const seed = path.join(opts.dir, 'guesthouse.ndjson');
  step('export SQLite ndjson', await cli(['export', db, '--format', 'ndjson', '-o', seed]));
  log(`import ${seed} → PostgreSQL`);
  const loaded = await cli(['import', seed, '--into', opts.into, ...pg]);
  let all = verified(loaded);
  step('import into PostgreSQL', loaded, all);
  for (const [label, args, back] of [
    ['ndjson', ['--format', 'ndjson'], true],
    ['json', ['--format', 'json'], true],
    ['ndjson+zstd', ['--format', 'ndjson', '--compress', 'zstd'], true],
    ['sql', ['--format', 'sql'], false],
  ] as const) {
    const file = path.join(opts.dir, `from-postgres.${label.replace('+zstd', '.zst')}`);
    log(`export PostgreSQL ${label} → ${file}`);
    step(`export PostgreSQL ${label}`, await cli(['export', opts.into, ...pg, ...args, '-o', file]));
    if (!back) continue; // a sql export loads into an empty PostgreSQL database: scriptorium import FILE --into postgres://…
    const into = path.join(opts.dir, `from-postgres-${label.replace('+', '-')}.db`);
    log(`import ${file} → ${into}`);
    const im = await cli(['import', file, '--into', into]);
    all &&= verified(im);
    step(`import ${label} into SQLite`, im, verified(im));
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ database: db, postgres: loaded.into, rows, steps, identical: all }, null, 2)}\n`);
  else if (!opts.quiet) process.stdout.write(`${renderTable(steps)}\n${all ? 'every table of every import was verified value by value against its file' : 'SOME IMPORTS WERE NOT VERIFIED (see above)'}\n`);
  return all;
}

function renderTable(steps: Step[]): string {
  const head = ['step', 'rows', 'bytes', 'seconds', 'rows/s', 'peak RSS', 'identical'];
  const body = steps.map((s) => [
    s.label,
    formatCount(s.rows),
    formatBytes(s.bytes),
    s.seconds.toFixed(2),
    formatCount(s.rows / Math.max(s.seconds, 1e-3)),
    formatBytes(s.peakRssBytes),
    s.identical === undefined ? '' : s.identical ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
