/**
 * The benchmark's scaling case (issue 14): at 1M and 10M+ rows, `backup` into a fresh repository, then
 * `restore` of that snapshot, then a second `backup` of the same database into the repository that now
 * holds a snapshot of that size, and `restore` of the second snapshot, each as its own process under
 * GNU time, reporting time per row and peak RSS, and the peak RSS ratio between the smallest and the
 * largest size (targets: < 100 MB at every size, and ≤ 1.2× from 1M to 10M rows).
 *
 * Outside the default run (a 10M-row database is ~2 GB and takes minutes to build and back up): run it
 * with `npm run bench:scale` (default sizes) or `node dist/cli/main.js bench --scale --sizes 520k,5200k`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cliNodeFlags } from '../cli/node-flags.js';
import { init } from '../repository/index.js';
import { CLI_PATH } from './cases.js';
import { dirBytes } from './dedup.js';
import { hasGnuTime, removeDatabase, runTimed, warm } from './process.js';
import type { TargetCheck } from './stats.js';

export { SCALE_SIZES } from './sizes.js';

/** The steps, in run order. */
export const SCALE_STEPS = ['backup-first', 'restore-first', 'backup-second', 'restore-second'] as const;
export type ScaleStepId = (typeof SCALE_STEPS)[number];

const STEP_LABELS: Record<ScaleStepId, string> = {
  'backup-first': 'backup, first snapshot (empty repository)',
  'restore-first': 'restore of the first snapshot',
  'backup-second': 'backup, second snapshot (unchanged database, repository holds the first)',
  'restore-second': 'restore of the second snapshot',
};

/** One step at one size. */
export interface ScaleStep {
  id: ScaleStepId;
  label: string;
  seconds: number;
  usPerRow: number;
  /** Peak RSS in bytes, or null without GNU time. */
  peakRssBytes: number | null;
}

/** All steps at one size. */
export interface ScaleSize {
  records: number;
  rows: number;
  dbBytes: number;
  /** Bytes of the repository after the second snapshot. */
  repositoryBytes: number;
  steps: ScaleStep[];
}

/** The scaling report, as written to `<date>-scale.json`. */
export interface ScaleReport {
  date: string;
  startedAt: string;
  totalSeconds: number;
  command: string;
  loadAverage: [number, number];
  rssMeasured: boolean;
  sizes: ScaleSize[];
  targets: TargetCheck[];
}

/** Options of {@link runScale}. */
export interface ScaleOptions {
  /** Registrations per database (rows ≈ 1.93 × N), ascending after de-duplication. */
  sizes: number[];
  /** Cache of demo databases and scratch space. */
  workDir: string;
  /** Directory for `<date>-scale.md` and `.json`. */
  out: string;
  command: string;
  log: (line: string) => void;
  /** Builds (or reuses) the demo database of `records` registrations; returns its path and rows. */
  database: (records: number) => { file: string; rows: number };
}

const MB = 1e6;

/** Runs the scaling case and writes its report. */
export async function runScale(o: ScaleOptions): Promise<{ report: ScaleReport; markdown: string; files: { md: string; json: string } }> {
  const started = new Date();
  const load0 = os.loadavg()[0]!;
  const sizes: ScaleSize[] = [];
  for (const records of [...new Set(o.sizes)].sort((a, b) => a - b)) {
    const { file: db, rows } = o.database(records);
    const dir = path.join(o.workDir, `scale-${records}-${process.pid}`);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const repo = path.join(dir, 'repo');
    const into = path.join(dir, 'restored.db');
    const cli = (...args: string[]) => ({ cmd: process.execPath, args: [...cliNodeFlags(), CLI_PATH, ...args, '--json'] });
    try {
      await init(repo);
      const steps: ScaleStep[] = [];
      for (const id of SCALE_STEPS) {
        const backingUp = id.startsWith('backup');
        if (!backingUp) removeDatabase(into);
        // Read what the step reads once first, so that no size pays for a cold page cache.
        warm(backingUp ? db : repo);
        const r = await runTimed(backingUp ? cli('backup', db, '--repo', repo) : cli('restore', 'latest', '--repo', repo, '--into', into, '--force'));
        const seconds = r.wallMs / 1000;
        const step: ScaleStep = { id, label: STEP_LABELS[id], seconds, usPerRow: (seconds * 1e6) / rows, peakRssBytes: r.peakRssBytes };
        steps.push(step);
        o.log(`  scale N=${records.toLocaleString('en-US')} (${rows.toLocaleString('en-US')} rows): ${id} ${seconds.toFixed(1)} s, ${step.usPerRow.toFixed(2)} µs/row, peak RSS ${r.peakRssBytes === null ? '?' : (r.peakRssBytes / MB).toFixed(1)} MB`);
      }
      sizes.push({ records, rows, dbBytes: fs.statSync(db).size, repositoryBytes: dirBytes(repo), steps });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const report: ScaleReport = {
    date: started.toISOString().slice(0, 10),
    startedAt: started.toISOString(),
    totalSeconds: (Date.now() - started.getTime()) / 1000,
    command: o.command,
    loadAverage: [load0, os.loadavg()[0]!],
    rssMeasured: hasGnuTime(),
    sizes,
    targets: scaleTargets(sizes),
  };
  const markdown = renderScale(report);
  fs.mkdirSync(o.out, { recursive: true });
  const base = path.join(o.out, `${report.date}-scale`);
  const files = { md: `${base}.md`, json: `${base}.json` };
  fs.writeFileSync(files.md, markdown);
  fs.writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  return { report, markdown, files };
}

/**
 * Issue 14's memory targets: every step's peak RSS under 100 MB at every size, and each step's peak
 * RSS at the largest size at most 1.2× the one at the smallest (meant for 1M → 10M rows).
 */
export function scaleTargets(sizes: ScaleSize[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const lo = sizes[0];
  const hi = sizes[sizes.length - 1];
  for (const id of SCALE_STEPS) {
    for (const s of sizes) {
      const st = s.steps.find((x) => x.id === id);
      if (st?.peakRssBytes == null) continue;
      out.push({ issue: 14, name: `peak RSS of ${STEP_LABELS[id]}, ${s.rows.toLocaleString('en-US')} rows`, required: '< 100 MB', measured: `${(st.peakRssBytes / MB).toFixed(1)} MB`, met: st.peakRssBytes < 100 * MB });
    }
    const a = lo?.steps.find((x) => x.id === id)?.peakRssBytes;
    const b = hi?.steps.find((x) => x.id === id)?.peakRssBytes;
    if (lo && hi && lo !== hi && a && b) {
      out.push({
        issue: 14,
        name: `peak RSS ratio of ${STEP_LABELS[id]}, ${hi.rows.toLocaleString('en-US')} vs ${lo.rows.toLocaleString('en-US')} rows`,
        required: '≤ 1.2×',
        measured: `${(b / a).toFixed(2)}×`,
        met: b / a <= 1.2,
      });
    }
  }
  return out;
}

/** The scaling report as Markdown. */
export function renderScale(r: ScaleReport): string {
  const cell = (c: string): string => c.replace(/\|/g, '\\|');
  const row = (cells: string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  const mb = (b: number | null): string => (b === null ? '?' : (b / MB).toFixed(1));
  const out = [
    `# scriptorium scaling benchmark — ${r.date}`,
    '',
    `Reproduce: \`${r.command}\``,
    '',
    `Each step ran once as its own process (wall time including start-up; peak RSS ${r.rssMeasured ? 'from `/usr/bin/time -f %M`' : 'not measured: GNU time missing'}), ` +
      `in this order at each size: backup into a fresh repository, restore of that snapshot, backup of the same (unchanged) database again, restore of the second snapshot. ` +
      `Load average ${r.loadAverage.map((v) => v.toFixed(2)).join(' → ')}; total ${(r.totalSeconds / 60).toFixed(1)} min.`,
    '',
    row(['rows', 'database MB', 'repository MB (2 snapshots)', 'step', 'seconds', 'µs/row', 'peak RSS MB']),
    row(['--:', '--:', '--:', '---', '--:', '--:', '--:']),
    ...r.sizes.flatMap((s) =>
      s.steps.map((st) => row([s.rows.toLocaleString('en-US'), mb(s.dbBytes), mb(s.repositoryBytes), st.label, st.seconds.toFixed(2), st.usPerRow.toFixed(2), mb(st.peakRssBytes)])),
    ),
    '',
    '## Targets (issue 14)',
    '',
    row(['target', 'required', 'measured', 'met']),
    row(['---', '--:', '--:', '---']),
    ...r.targets.map((t) => row([t.name, t.required, t.measured, t.met ? 'yes' : '**no**'])),
    '',
  ];
  return out.join('\n');
}
