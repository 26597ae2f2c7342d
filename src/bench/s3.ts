/**
 * The benchmark's `s3` section (issue 15): backup and restore of one database to a local S3 server
 * (moto_server on loopback, started here) beside the same to a local repository in the same run, the
 * requests each S3 backup made by kind (first, unchanged, changed), peak RSS, and restic's backup of the
 * database's `.dump` to the same server as the peer. The first backup and the restore run in rounds,
 * each beside its local twin, so that the S3 ÷ local ratios are medians of the rounds' own ratios. Each command is its own process under
 * `/usr/bin/time`; skipped with a line saying why when moto_server (or, for the peer, restic or sqlite3)
 * is absent.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { cliNodeFlags } from '../cli/node-flags.js';
import { CLI_PATH } from './cases.js';
import { removeDatabase, runTimed, type CommandSpec } from './process.js';
import { median } from './stats.js';
import { createBucketOn, findOnPath, startMotoServer } from './s3-server.js';

/** One measured command of the section. */
export interface S3BenchRun {
  id: 'backup-local' | 'backup-s3' | 'backup-s3-unchanged' | 'backup-s3-changed' | 'restore-local' | 'restore-s3' | 'restic-backup-s3';
  label: string;
  seconds: number;
  peakRssMB: number | null;
  /** Requests the command made, by kind (scriptorium on S3: from its `--json`; the last run's). */
  requests?: Record<string, number>;
  /** Each round's time, for a command run in every round (`seconds` is their median). */
  times?: number[];
}

/** The section's report. */
export interface S3BenchReport {
  database: string;
  rows: number;
  runs: S3BenchRun[];
  /**
   * S3 ÷ local for backup and restore (the median of the rounds' own ratios), restic ÷ scriptorium for
   * the backup to S3 (> 1: we are faster).
   */
  ratios: { backup?: number; restore?: number; resticOverOurs?: number };
  /** The lowest and highest round's ratio. */
  spread?: { backup: [number, number]; restore: [number, number] };
  /** Rounds of the first backup and the restore, each pair in alternating order. */
  rounds?: number;
  /** Why the section (or its peer) did not run. */
  skipped?: string;
  peerSkipped?: string;
}

/** The targets of issue 15 that this section checks. */
export const S3_TARGETS = { ratio: 1.5, peakRssMB: 100, unchangedRequests: 6 };

const CREDENTIALS = { accessKeyId: 'bench', secretAccessKey: 'bench-secret' };
/** Rounds of the first backup and the restore, local and S3 side by side. */
const ROUNDS = 4;

/** Runs the section on `db` (the largest bench database), in a scratch folder under `workDir`. */
export async function runS3Bench(o: { db: string; workDir: string; log: (line: string) => void }): Promise<S3BenchReport> {
  const rows = countRows(o.db);
  const report: S3BenchReport = { database: path.basename(o.db), rows, runs: [], ratios: {} };
  const moto = findOnPath('moto_server');
  if (!moto) {
    report.skipped = 'moto_server is not installed (pip install "moto[server]==5.2.1"): S3 section skipped';
    o.log(report.skipped);
    return report;
  }
  const work = fs.mkdtempSync(path.join(o.workDir, 's3-'));
  const server = await startMotoServer(moto);
  try {
    await createBucketOn(server.endpoint, 'bench', CREDENTIALS);
    const env: Record<string, string> = {
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: server.endpoint, SCRIPTORIUM_CACHE_DIR: path.join(work, 'cache'), RESTIC_PASSWORD: 'bench',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', NO_COLOR: '1',
    };
    // With the CLI's own V8 flags (its shebang's), as `scriptorium` runs: peak RSS is the user's.
    const cli = (...args: string[]): CommandSpec => ({ cmd: process.execPath, args: [...cliNodeFlags(), CLI_PATH, ...args], env });
    // Each round takes a first backup into a fresh local repository and a fresh S3 prefix, and
    // restores from each, the two side by side in alternating order, so that neither always follows
    // the other (nor pays alone for the page cache or the machine's other load); the ratios are the
    // medians of the rounds' own ratios. The unchanged and changed backups follow, once, on the last
    // round's S3 repository.
    const runsOf = new Map<S3BenchRun['id'], S3BenchRun[]>();
    const measure = async (id: S3BenchRun['id'], label: string, spec: CommandSpec, requests = false): Promise<S3BenchRun> => {
      const r = await runTimed(spec);
      const run: S3BenchRun = { id, label, seconds: r.wallMs / 1000, peakRssMB: r.peakRssBytes === null ? null : r.peakRssBytes / 1e6 };
      if (requests) {
        const counted = (JSON.parse(r.stdout) as { requests?: Record<string, number> }).requests;
        if (counted) run.requests = counted;
      }
      runsOf.set(id, [...(runsOf.get(id) ?? []), run]);
      o.log(`  s3: ${label}: ${run.seconds.toFixed(2)} s, ${run.peakRssMB?.toFixed(0) ?? '?'} MB${run.requests ? `, requests ${JSON.stringify(run.requests)}` : ''}`);
      return run;
    };
    const pair = async (first: () => Promise<S3BenchRun>, second: () => Promise<S3BenchRun>, round: number): Promise<[S3BenchRun, S3BenchRun]> => {
      if (round % 2 === 0) return [await first(), await second()];
      const b = await second();
      return [await first(), b];
    };
    const backupRatios: number[] = [];
    const restoreRatios: number[] = [];
    let local = '';
    let s3 = '';
    for (let round = 0; round < ROUNDS; round++) {
      local = path.join(work, `local-repo-${round}`);
      s3 = `s3://bench/repo-${round}`;
      await runTimed(cli('init', local, '-q'));
      await runTimed(cli('init', '--repo', s3, '-q'));
      const [l, r] = await pair(
        () => measure('backup-local', 'backup → local repository', cli('backup', o.db, '--repo', local, '--json')),
        () => measure('backup-s3', 'backup → S3 (first)', cli('backup', o.db, '--repo', s3, '--json'), true),
        round,
      );
      backupRatios.push(r.seconds / l.seconds);
      const into = (name: string) => path.join(work, `${name}-${round}.db`);
      const [rl, rs] = await pair(
        () => measure('restore-local', 'restore ← local repository', cli('restore', 'latest', '--repo', local, '--into', into('r-local'), '--force', '--json')),
        () => measure('restore-s3', 'restore ← S3', cli('restore', 'latest', '--repo', s3, '--into', into('r-s3'), '--force', '--json'), true),
        round,
      );
      restoreRatios.push(rs.seconds / rl.seconds);
      removeDatabase(into('r-local'));
      removeDatabase(into('r-s3'));
    }
    await measure('backup-s3-unchanged', 'backup → S3, unchanged', cli('backup', o.db, '--repo', s3, '--json'), true);
    const changed = path.join(work, path.basename(o.db));
    fs.copyFileSync(o.db, changed);
    changeSome(changed);
    await measure('backup-s3-changed', 'backup → S3, 0.1 % of rows changed', cli('backup', changed, '--repo', s3, '--json'), true);
    removeDatabase(changed);
    const resticBin = findOnPath('restic');
    const sqlite3 = findOnPath('sqlite3');
    if (!resticBin || !sqlite3) {
      report.peerSkipped = `${!resticBin ? 'restic' : 'sqlite3'} is not installed (apt-get install ${!resticBin ? 'restic' : 'sqlite3'}): restic peer skipped`;
      o.log(`  ${report.peerSkipped}`);
    } else {
      const dump = path.join(work, 'dump.sql');
      const r = spawnSync(sqlite3, [o.db, '.dump'], { stdio: ['ignore', fs.openSync(dump, 'w'), 'pipe'] });
      if (r.status !== 0) throw new Error(`sqlite3 .dump failed: ${r.stderr?.toString().slice(-500)}`);
      const repo = `s3:${server.endpoint}/bench/restic`;
      await runTimed({ cmd: resticBin, args: ['-r', repo, 'init', '-q'], env });
      await measure('restic-backup-s3', 'restic backup of the .dump → S3', { cmd: resticBin, args: ['-r', repo, 'backup', '-q', dump], env });
      fs.rmSync(dump, { force: true });
    }
    // One line per command: the median time, the highest peak RSS, the last run's requests.
    const order: S3BenchRun['id'][] = ['backup-local', 'backup-s3', 'backup-s3-unchanged', 'backup-s3-changed', 'restore-s3', 'restore-local', 'restic-backup-s3'];
    for (const id of order) {
      const runs = runsOf.get(id);
      if (!runs) continue;
      const rss = runs.map((r) => r.peakRssMB).filter((v): v is number => v !== null);
      report.runs.push({ ...runs[runs.length - 1]!, seconds: median(runs.map((r) => r.seconds)), peakRssMB: rss.length > 0 ? Math.max(...rss) : null, ...(runs.length > 1 ? { times: runs.map((r) => r.seconds) } : {}) });
    }
    const restic = runsOf.get('restic-backup-s3')?.[0]?.seconds;
    const resticOverOurs = restic !== undefined ? restic / median(runsOf.get('backup-s3')!.map((r) => r.seconds)) : undefined;
    report.ratios = { backup: median(backupRatios), restore: median(restoreRatios), ...(resticOverOurs ? { resticOverOurs } : {}) };
    report.spread = { backup: [Math.min(...backupRatios), Math.max(...backupRatios)], restore: [Math.min(...restoreRatios), Math.max(...restoreRatios)] };
    report.rounds = ROUNDS;
    return report;
  } finally {
    await server.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Changes about 0.1 % of the rows of the largest table (a day's updates), in place. */
function changeSome(file: string): void {
  const db = new Database(file);
  try {
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all() as string[];
    const quoted = (t: string) => `"${t.replace(/"/g, '""')}"`;
    const largest = tables.map((t) => [t, db.prepare(`SELECT count(*) FROM ${quoted(t)}`).pluck().get() as number] as const).sort((a, b) => b[1] - a[1])[0];
    if (!largest) return;
    const column = (db.prepare(`SELECT name FROM pragma_table_info(?) WHERE type LIKE '%TEXT%' AND pk = 0 LIMIT 1`).pluck().get(largest[0]) as string | undefined);
    if (!column) return;
    db.prepare(`UPDATE ${quoted(largest[0])} SET ${quoted(column)} = coalesce(${quoted(column)}, '') || ' (changed)' WHERE rowid % 1000 = 7`).run();
  } finally {
    db.close();
  }
}

function countRows(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'").pluck().all() as string[];
    return tables.reduce((n, t) => n + (db.prepare(`SELECT count(*) FROM "${t.replace(/"/g, '""')}"`).pluck().get() as number), 0);
  } finally {
    db.close();
  }
}

/** The section as Markdown, with the targets checked against the runs of the same process. */
export function s3Markdown(r: S3BenchReport): string {
  const lines = ['## S3 (moto_server on loopback)', ''];
  if (r.skipped) return [...lines, r.skipped, ''].join('\n');
  lines.push(r.rounds
    ? `${r.database}, ${r.rows.toLocaleString('en-US')} rows. The first backup and the restore ran ${r.rounds} times, each into a fresh repository and beside the same command on a local one, in alternating order: median time, highest peak RSS; each ratio is the median of the rounds' own ratios, with the lowest and highest. The unchanged and changed backups and restic ran once. (The machine may be loaded: compare within this table.)`
    : `${r.database}, ${r.rows.toLocaleString('en-US')} rows; one run each, in this order, in the same process as the rest of the report (the machine may be loaded: compare within this table).`, '');
  lines.push('| command | time | peak RSS | requests |', '| --- | --- | --- | --- |');
  for (const run of r.runs) {
    const req = run.requests ? Object.entries(run.requests).filter(([k, v]) => v > 0 && k !== 'cacheHits').map(([k, v]) => `${k} ${v}`).join(', ') : '';
    lines.push(`| ${run.label} | ${run.seconds.toFixed(2)} s | ${run.peakRssMB === null ? '?' : `${run.peakRssMB.toFixed(0)} MB`} | ${req} |`);
  }
  lines.push('');
  const { backup, restore, resticOverOurs } = r.ratios;
  const check = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const range = (x?: [number, number]) => (x ? `, rounds ${x[0].toFixed(2)}–${x[1].toFixed(2)}×` : '');
  if (backup !== undefined) lines.push(`- backup S3 ÷ local: ${backup.toFixed(2)}×${range(r.spread?.backup)} (target ≤ ${S3_TARGETS.ratio}×: ${check(backup <= S3_TARGETS.ratio)})`);
  if (restore !== undefined) lines.push(`- restore S3 ÷ local: ${restore.toFixed(2)}×${range(r.spread?.restore)} (target ≤ ${S3_TARGETS.ratio}×: ${check(restore <= S3_TARGETS.ratio)})`);
  if (resticOverOurs !== undefined) lines.push(`- restic's backup ÷ ours, to the same server: ${resticOverOurs.toFixed(2)}× (target > 1: ${check(resticOverOurs > 1)})`);
  if (r.peerSkipped) lines.push(`- ${r.peerSkipped}`);
  const s3Runs = r.runs.filter((x) => !x.id.startsWith('restic') && (x.id.endsWith('-s3') || x.id.startsWith('backup-s3')));
  const peak = Math.max(...s3Runs.map((x) => x.peakRssMB ?? NaN));
  if (Number.isFinite(peak)) lines.push(`- peak RSS of scriptorium on S3: ${peak.toFixed(0)} MB (target < ${S3_TARGETS.peakRssMB} MB: ${check(peak < S3_TARGETS.peakRssMB)})`);
  const unchanged = r.runs.find((x) => x.id === 'backup-s3-unchanged')?.requests;
  if (unchanged) lines.push(`- unchanged backup: ${unchanged.total} requests, ${unchanged.LIST ?? 0} LIST (target ≤ ${S3_TARGETS.unchangedRequests}, no LIST: ${check(unchanged.total! <= S3_TARGETS.unchangedRequests && !unchanged.LIST)})`);
  lines.push('');
  return lines.join('\n');
}
