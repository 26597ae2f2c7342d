import { spawnSync } from 'node:child_process';
import { createHash, scryptSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DEFAULT_SCRYPT_LOG_N } from '../codecs/age-format.js';
import { createDemoDatabase } from '../demo/demo-data.js';
import { runPgcross } from './pgcross.js';
import { BIG_VALUE_BYTES, bigValueTargets, QUICK_BIG_VALUE_BYTES, runBigValue } from './big-value.js';
import { probeAvailability, type Availability } from './availability.js';
import { benchCases, OPTIONAL_CASE_IDS, runOrder, type BenchCase, type OptionalCases } from './cases.js';
import { renderChart } from './chart.js';
import { runDaemonBench } from './daemon.js';
import { dirBytes, runDedup, type DedupPeer } from './dedup.js';
import { runS3Bench } from './s3.js';
import { runEncryptionCost } from './encryption.js';
import { renderMarkdown } from './markdown.js';
import { hasGnuTime, removeDatabase, runTimed, warm } from './process.js';
import { encryptedDedupPeer, resticDedupPeer } from './repository-peers.js';
import { runScale } from './scale.js';
import { addRatios, checkTargets, dedupTargets, encryptionTargets, summarizeCase, trends, type BenchReport, type DedupReport, type SizeResult, type UnavailableCases } from './stats.js';

export { DEFAULT_SIZES, QUICK_SIZES, SCALE_SIZES } from './sizes.js';

/**
 * The scaling case (`bench --scale`, see `scale.ts`) on the cached demo databases of `o.sizes`
 * registrations, in `o.workDir` (default: `<os.tmpdir()>/scriptorium-bench`).
 */
export async function runScaleBenchmark(o: { sizes: number[]; out: string; workDir?: string; command: string; log: (line: string) => void }): ReturnType<typeof runScale> {
  const workDir = o.workDir ?? path.join(os.tmpdir(), 'scriptorium-bench');
  if (!hasGnuTime()) o.log('warning: /usr/bin/time (GNU time) not found; peak RSS will not be measured (apt-get install time)');
  return runScale({
    sizes: o.sizes,
    workDir,
    out: o.out,
    command: o.command,
    log: o.log,
    database: (records) => {
      o.log(`scale: demo database of ${records.toLocaleString('en-US')} registrations`);
      const file = cachedDemoDatabase(workDir, records, o.log);
      return { file, rows: userTables(file).rows };
    },
  });
}

/** Options of {@link runBenchmark}. */
export interface BenchOptions {
  /** Registrations per database (rows ≈ 1.93 × N). */
  sizes: number[];
  /** Runs per command; the report uses the median. */
  repeat: number;
  quick: boolean;
  /** Directory for `<date>.md`, `.json` and `.svg`. */
  out: string;
  /** Cache of demo databases and scratch space (default: `<os.tmpdir()>/scriptorium-bench`). */
  workDir?: string;
  /** How to reproduce this run, recorded in the report. */
  command?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Run the S3 section at the largest size (default true; src/bench/s3.ts). */
  s3?: boolean;
  /** Run the deduplication scenarios at the largest size (default true). */
  dedup?: boolean;
  /**
   * The large-value case: one value of this many bytes through export, import, backup and restore
   * (default 300 MB, quick 16 MB); false skips it.
   */
  bigValue?: number | false;
  /** The `daemon` section: daemon idle RSS/CPU, dashboard latency, a short soak (default true). */
  daemon?: boolean;
  /** The paired `encryption` section at the largest size (default true; src/bench/encryption.ts). */
  encryption?: boolean;
  /** The pgcross section: false skips it; otherwise its server (src/bench/pgcross.ts). */
  pgcross?: false | { pgUrl?: string };
}

/** What {@link runBenchmark} produced. */
export interface BenchOutcome {
  report: BenchReport;
  markdown: string;
  files: { md: string; json: string; svg: string };
}

function toolVersion(cmd: string): string {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${cmd} is needed by the benchmark but could not be run (${r.error?.message ?? r.stderr})`);
  const m = /v?(\d+\.\d+(\.\d+)?)/.exec(r.stdout);
  return m ? m[1]! : r.stdout.trim().split(/\s+/)[0] ?? '?';
}

/** Hash of the demo generator, so cached databases are rebuilt when it changes. */
function demoHash(): string {
  const src = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'demo', 'demo-data.js');
  return createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 10);
}

/** Returns the cached demo database for `records` registrations, building it first if needed. */
export function cachedDemoDatabase(workDir: string, records: number, log: (s: string) => void): string {
  fs.mkdirSync(workDir, { recursive: true });
  const file = path.join(workDir, `demo-${records}-${demoHash()}.db`);
  if (fs.existsSync(file)) return file;
  const tmp = `${file}.building-${process.pid}`;
  removeDatabase(tmp);
  const t0 = performance.now();
  const rows = createDemoDatabase(tmp, { records });
  removeDatabase(`${tmp}-wal`);
  fs.renameSync(tmp, file);
  log(`  built ${file}: ${rows.toLocaleString('en-US')} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return file;
}

export function userTables(db: string): { tables: string[]; rows: number } {
  const h = new Database(db, { readonly: true, fileMustExist: true });
  try {
    const tables = (
      h.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid").all() as { name: string }[]
    ).map((r) => r.name);
    let rows = 0;
    for (const t of tables) rows += (h.prepare(`SELECT count(*) AS n FROM "${t.replace(/"/g, '""')}"`).get() as { n: number }).n;
    return { tables, rows };
  } finally {
    h.close();
  }
}

/** Bytes of a file, or of every file under a directory. */
function pathBytes(p: string): number {
  const st = fs.statSync(p);
  return st.isDirectory() ? dirBytes(p) : st.size;
}

/** The in-process duration a scriptorium command printed with `--json` (`durationMs` or `stats.durationMs`). */
function reportedDuration(stdout: string): number | undefined {
  try {
    const j = JSON.parse(stdout) as { durationMs?: unknown; stats?: { durationMs?: unknown } };
    const ms = Number(j.durationMs ?? j.stats?.durationMs);
    return Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined; // no JSON summary: keep wall time only
  }
}

/**
 * Runs every case `repeat` times and summarizes one size. Each round runs every case once, ours next to
 * their peers and alternating which side goes first ({@link runOrder}); before each run, `sync` writes
 * back what the case before left dirty, so no run pays for another's writes, and what the case reads is
 * read once, so every run starts with it in the page cache.
 */
async function benchSize(records: number, o: BenchOptions, workDir: string, log: (s: string) => void, optional: OptionalCases): Promise<SizeResult> {
  const db = cachedDemoDatabase(workDir, records, log);
  const { tables, rows } = userTables(db);
  const dir = path.join(workDir, `run-${records}-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  try {
    const cases: BenchCase[] = benchCases(db, tables, dir, 'sqlite3', optional);
    const runs = new Map(cases.map((c) => [c.id, { ms: [] as number[], rss: [] as (number | null)[], reported: [] as number[] }]));
    for (let round = 0; round < o.repeat; round++) {
      for (const c of runOrder(cases, round)) {
        await c.prepare();
        spawnSync('sync');
        warm(c.reads);
        const r = await runTimed(c.spec);
        const acc = runs.get(c.id)!;
        acc.ms.push(r.wallMs);
        acc.rss.push(r.peakRssBytes);
        if (c.side === 'ours') {
          const ms = reportedDuration(r.stdout);
          if (ms !== undefined) acc.reported.push(ms);
        }
      }
      log(`  N=${records}: round ${round + 1}/${o.repeat} done`);
    }
    const results = cases.map((c) => {
      const acc = runs.get(c.id)!;
      return summarizeCase(c, rows, pathBytes(c.bytesFile), acc.ms, acc.rss, acc.reported);
    });
    addRatios(results);
    return { records, rows, dbBytes: fs.statSync(db).size, cases: results };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Bytes of `sqlite3 db .dump | zstd -3` (single-threaded, as the issue measures it). */
function dumpZstdBytes(db: string): number {
  const r = spawnSync('bash', ['-c', 'set -o pipefail; sqlite3 "$1" .dump | zstd -q -3 -c | wc -c', 'bench', db], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3 .dump | zstd -3 failed: ${r.stderr.trim()}`);
  return Number(r.stdout.trim());
}

/**
 * The deduplication scenarios on the demo database of `records` registrations (ours in-process, bytes
 * on disk), with the same snapshots taken by `peers` (restic, our encrypted repository) beside ours.
 */
async function benchDedup(records: number, workDir: string, log: (s: string) => void, peers: DedupPeer[]): Promise<DedupReport> {
  const db = cachedDemoDatabase(workDir, records, log);
  log(`deduplication scenarios at N=${records.toLocaleString('en-US')}${peers.length ? `, beside ${peers.map((p) => p.label).join(' and ')}` : ''}`);
  const t0 = performance.now();
  const r = await runDedup({ base: db, dir: path.join(workDir, `dedup-${records}-${process.pid}`), log, peers });
  return { records, ...r, dumpZstdBytes: dumpZstdBytes(db), seconds: (performance.now() - t0) / 1000 };
}

/**
 * The time of one scrypt key derivation at the work factor an encrypted export uses by default (age's
 * 2^18, r = 8), measured here in-process: a fixed cost of every passphrase-encrypted file.
 */
function ageScryptCost(): { logN: number; seconds: number } {
  const logN = DEFAULT_SCRYPT_LOG_N;
  const t0 = performance.now();
  scryptSync('bench', 'salt', 32, { N: 2 ** logN, r: 8, p: 1, maxmem: 2 ** (logN + 10) + (1 << 20) });
  return { logN, seconds: (performance.now() - t0) / 1000 };
}

/** The optional features that cannot run, as reported, with the cases each would have added. */
function unavailableCases(a: Availability): UnavailableCases[] {
  const features: [keyof OptionalCases, boolean][] = [
    ['restic', a.restic !== null],
    ['encryptedRepository', a.encryptedRepository],
    ['encryptedExport', a.encryptedExport],
  ];
  return features.filter(([, ok]) => !ok).map(([feature]) => ({ feature, cases: OPTIONAL_CASE_IDS[feature], reason: a.reasons[feature] ?? 'not available' }));
}

/**
 * Runs the benchmark: for each size, builds (or reuses) the demo database, measures scriptorium's
 * exports, imports, backup and restore and the sqlite3 peers as separate processes; then, at the
 * largest size, the repository's deduplication scenarios; and writes `<date>.md`, `.json` and `.svg`
 * into `o.out`.
 */
export async function runBenchmark(o: BenchOptions): Promise<BenchOutcome> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const workDir = o.workDir ?? path.join(os.tmpdir(), 'scriptorium-bench');
  const started = new Date();
  const loadAtStart = os.loadavg()[0]!;
  const sizes = [...new Set(o.sizes)].sort((a, b) => a - b);
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? '?',
    memoryBytes: os.totalmem(),
    platform: `${os.platform()} ${os.release()}`,
    node: process.versions.node,
    sqlite3: toolVersion('sqlite3'),
    zstd: toolVersion('zstd'),
  };
  if (!hasGnuTime()) log('warning: /usr/bin/time (GNU time) not found; peak RSS will not be measured (apt-get install time)');
  const available = probeAvailability();
  const unavailable = unavailableCases(available);
  for (const u of unavailable) log(`not available: ${u.cases.join(', ')} (${u.reason})`);
  const optional: OptionalCases = { restic: available.restic !== null, encryptedRepository: available.encryptedRepository, encryptedExport: available.encryptedExport };
  const results: SizeResult[] = [];
  for (const records of sizes) {
    log(`size N=${records.toLocaleString('en-US')} registrations`);
    results.push(await benchSize(records, o, workDir, log, optional));
  }
  const largest = sizes[sizes.length - 1];
  const peers = [...(available.encryptedRepository ? [encryptedDedupPeer()] : []), ...(available.restic !== null ? [resticDedupPeer()] : [])];
  const dedup = o.dedup !== false && largest !== undefined ? await benchDedup(largest, workDir, log, peers) : undefined;
  const paired = o.encryption !== false && largest !== undefined && available.encryptedRepository && available.encryptedExport;
  if (paired) log(`encryption's cost, paired, at N=${largest.toLocaleString('en-US')}`);
  const encryption = paired ? await runEncryptionCost({ db: cachedDemoDatabase(workDir, largest, log), rows: results[results.length - 1]!.rows, workDir, ...(o.quick ? { rounds: 1 } : {}), log }) : undefined;
  const bigBytes = o.bigValue === false ? undefined : o.bigValue ?? (o.quick ? QUICK_BIG_VALUE_BYTES : BIG_VALUE_BYTES);
  if (bigBytes !== undefined) log(`one large value: ${(bigBytes / 1e6).toFixed(0)} MB`);
  const bigValue = bigBytes === undefined ? undefined : await runBigValue({ workDir, valueBytes: bigBytes, log });
  const daemon = o.daemon === false ? undefined : await runDaemonBench({ quick: o.quick, log });
  if (o.s3 !== false && largest !== undefined) log(`S3 section at N=${largest.toLocaleString('en-US')}`);
  const s3 = o.s3 === false || largest === undefined ? undefined : await runS3Bench({ db: cachedDemoDatabase(workDir, largest, log), workDir, log });
  const pgcross = o.pgcross === false ? undefined : await runPgcross({ workDir, records: largest ?? 2000, repeat: o.repeat, ...(o.pgcross?.pgUrl ? { pgUrl: o.pgcross.pgUrl } : {}), log });
  const finished = new Date();
  const report: BenchReport = {
    date: started.toISOString().slice(0, 10),
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    totalSeconds: (finished.getTime() - started.getTime()) / 1000,
    repeat: o.repeat,
    quick: o.quick,
    machine: { ...machine, ...(available.restic !== null ? { restic: available.restic } : {}) },
    unavailable,
    loadAverage: [loadAtStart, os.loadavg()[0]!],
    rssMeasured: hasGnuTime(),
    command: o.command ?? 'npm run bench',
    sizes: results,
    trends: trends(results),
    targets: [...checkTargets(results), ...(dedup ? dedupTargets(dedup) : []), ...encryptionTargets(results, dedup, unavailable, available.encryptedExport ? ageScryptCost() : undefined, encryption?.ratios), ...(bigValue ? bigValueTargets(bigValue) : [])],
    ...(dedup ? { dedup } : {}),
    ...(encryption ? { encryption } : {}),
    ...(bigValue ? { bigValue } : {}),
    ...(daemon ? { daemon } : {}),
    ...(s3 ? { s3 } : {}),
    ...(pgcross ? { pgcross } : {}),
  };
  const markdown = renderMarkdown(report);
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, report.date);
  const files = { md: `${base}.md`, json: `${base}.json`, svg: `${base}.svg` };
  fs.writeFileSync(files.md, markdown);
  fs.writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  fs.writeFileSync(files.svg, renderChart(report));
  return { report, markdown, files };
}
