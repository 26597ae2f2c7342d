/**
 * The `encryption` section: what encryption costs, measured in pairs. The main run times the encrypted
 * cases in groups of their own (beside restic), a few minutes apart from the plain ones; on a loaded
 * machine that alone moved the ratio from +3% to +14% between two runs of the same code. Here each
 * round runs the plain command and its encrypted twins back to back (plain backup, encrypted backup;
 * plain restore, encrypted restore; export sql, --encrypt, --recipient), rotating which goes first, and
 * each ratio is taken within its round before the median over rounds, so that both sides of a ratio
 * meet the same machine. The spread (lowest and highest per-round ratio) says how far to trust it.
 *
 * Beside wall time it records each process's CPU time (user + system, every thread, from GNU time): on
 * a machine shared with other work, wall time follows the load, CPU time much less; and CPU time over
 * the machine's cores bounds the wall time a command can reach on it (see {@link cpuFloor}).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cliNodeFlags } from '../cli/node-flags.js';
import { X25519Identity } from '../codecs/age-keys.js';
import { DEFAULT_SCRYPT_LOG_N } from '../codecs/age-format.js';
import { BENCH_PASSWORD, CLI_PATH, ENCRYPTED_ENV } from './cases.js';
import { GNU_TIME, hasGnuTime, removeDatabase, warm, type CommandSpec } from './process.js';

/** Rounds of the section in the main run (each round runs every variant once). */
export const ENCRYPTION_ROUNDS = 5;

/** One command of a comparison: the plain one is the first variant. */
interface Variant {
  id: string;
  label: string;
  /** Reset before each run (not timed). */
  prepare: () => void;
  /** Read once before each run, so that it starts in the page cache. */
  reads: string;
  spec: CommandSpec;
}

/** Per-round measurements of one variant. */
export interface VariantRuns {
  id: string;
  label: string;
  wallMs: number[];
  /** User + system CPU time of the process (all threads); empty without GNU time. */
  cpuMs: number[];
  peakRssBytes: (number | null)[];
}

/** One encrypted variant against the plain one, round by round. */
export interface PairedRatio {
  /** The encrypted variant's id (e.g. `backup-encrypted`). */
  id: string;
  label: string;
  /** The plain variant's id (`backup`). */
  plainId: string;
  /** Median wall seconds, plain and encrypted. */
  plainSeconds: number;
  seconds: number;
  /** Median over rounds of (encrypted wall / plain wall in the same round). */
  ratio: number;
  /** The lowest and highest per-round wall ratio. */
  spread: [number, number];
  /** The same from CPU time (null without GNU time). */
  cpuRatio: number | null;
  cpuSpread: [number, number] | null;
  /** Median CPU seconds, plain and encrypted (null without GNU time). */
  plainCpuSeconds: number | null;
  cpuSeconds: number | null;
  /** Issue 14's bound on the ratio (1.10 for backup and restore, 1.15 for an export). */
  max: number;
  /** Highest peak RSS over the rounds in bytes, plain and encrypted (null without GNU time). */
  plainPeakRssBytes: number | null;
  peakRssBytes: number | null;
}

export interface EncryptionCostReport {
  rows: number;
  rounds: number;
  cpus: number;
  loadAverage: [number, number];
  variants: VariantRuns[];
  ratios: PairedRatio[];
  /** scrypt at age's default work factor, alone in a process of its own, once a round. */
  scrypt: { logN: number; wallMs: number[]; cpuMs: number[] };
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Runs `spec` under GNU time: wall, CPU (user + system) and peak RSS; throws with stderr's tail on failure. */
function timed(spec: CommandSpec): { wallMs: number; cpuMs: number | null; rss: number | null } {
  const useTime = hasGnuTime();
  const out = path.join(os.tmpdir(), `scriptorium-bench-enc-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const [cmd, args] = useTime ? [GNU_TIME, ['-f', '%U %S %M', '-o', out, spec.cmd, ...spec.args]] : [spec.cmd, spec.args];
  try {
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...spec.env } });
    const wallMs = performance.now() - t0;
    if (r.error || r.status !== 0) throw new Error(`${[spec.cmd, ...spec.args].join(' ')} failed: ${(r.stderr || r.error?.message || '').trim().slice(-2000)}`);
    if (!useTime) return { wallMs, cpuMs: null, rss: null };
    const [u, s, kb] = fs.readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    return { wallMs, cpuMs: (u! + s!) * 1000, rss: kb! * 1024 };
  } finally {
    fs.rmSync(out, { force: true });
  }
}

function setup(args: string[], env: Record<string, string | undefined>): void {
  const r = spawnSync(process.execPath, [...cliNodeFlags(), CLI_PATH, ...args, '--quiet'], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.error || r.status !== 0) throw new Error(`scriptorium ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
}

/** The environment of a plain command: no passphrase (a plain repository refuses one for backup). */
const PLAIN_ENV = { SCRIPTORIUM_PASSWORD: undefined, SCRIPTORIUM_IDENTITY_FILE: undefined } as const;

function cli(args: string[], env?: Record<string, string>): CommandSpec {
  return { cmd: process.execPath, args: [...cliNodeFlags(), CLI_PATH, ...args, '--quiet'], ...(env ? { env } : {}) };
}

/** The comparisons: for each, the plain variant first, then its encrypted twins. */
function comparisons(db: string, dir: string): { max: number; variants: Variant[] }[] {
  const f = (n: string): string => path.join(dir, n);
  const plainEnv = (spec: CommandSpec): CommandSpec => ({ ...spec, env: { ...spec.env, ...(PLAIN_ENV as unknown as Record<string, string>) } });
  const fresh = (repo: string, encrypted: boolean) => (): void => {
    fs.rmSync(repo, { recursive: true, force: true });
    setup(encrypted ? ['init', '--encrypt', repo] : ['init', repo], encrypted ? ENCRYPTED_ENV : PLAIN_ENV);
  };
  const recipient = X25519Identity.generate().identity.recipient.toString();
  const rmf = (file: string) => (): void => fs.rmSync(file, { force: true });
  return [
    {
      max: 0.1,
      variants: [
        { id: 'backup', label: 'backup', prepare: fresh(f('repo'), false), reads: db, spec: plainEnv(cli(['backup', db, '--repo', f('repo')])) },
        { id: 'backup-encrypted', label: 'backup (encrypted)', prepare: fresh(f('repo-enc'), true), reads: db, spec: cli(['backup', db, '--repo', f('repo-enc')], { ...ENCRYPTED_ENV }) },
      ],
    },
    {
      // Each restores the snapshot its backup took in the same round.
      max: 0.1,
      variants: [
        { id: 'restore', label: 'restore', prepare: () => removeDatabase(f('restore.db')), reads: f('repo'), spec: plainEnv(cli(['restore', 'latest', '--repo', f('repo'), '--into', f('restore.db'), '--force'])) },
        { id: 'restore-encrypted', label: 'restore (encrypted)', prepare: () => removeDatabase(f('restore-enc.db')), reads: f('repo-enc'), spec: cli(['restore', 'latest', '--repo', f('repo-enc'), '--into', f('restore-enc.db'), '--force'], { ...ENCRYPTED_ENV }) },
      ],
    },
    {
      max: 0.15,
      variants: [
        { id: 'export-sql', label: 'export sql', prepare: rmf(f('out.sql')), reads: db, spec: plainEnv(cli(['export', db, '--format', 'sql', '-o', f('out.sql')])) },
        { id: 'export-sql-encrypted', label: 'export sql --encrypt (age, scrypt)', prepare: rmf(f('out.sql.age')), reads: db, spec: cli(['export', db, '--format', 'sql', '--encrypt', '-o', f('out.sql.age')], { ...ENCRYPTED_ENV }) },
        { id: 'export-sql-recipient', label: 'export sql --recipient (age, X25519)', prepare: rmf(f('out-r.sql.age')), reads: db, spec: plainEnv(cli(['export', db, '--format', 'sql', '--recipient', recipient, '-o', f('out-r.sql.age')])) },
      ],
    },
  ];
}

/** One scrypt at age's default work factor in a process of its own (what an encrypted export adds at least). */
function scryptSpec(): CommandSpec {
  const logN = DEFAULT_SCRYPT_LOG_N;
  const code = `require('node:crypto').scryptSync(process.env.P, 'salt', 32, { N: 2 ** ${logN}, r: 8, p: 1, maxmem: 2 ** ${logN + 10} + (1 << 20) })`;
  return { cmd: process.execPath, args: ['-e', code], env: { P: BENCH_PASSWORD } };
}

/**
 * Runs the section on `db` (`rows` rows) in a scratch folder under `workDir`: `rounds` rounds, each
 * running every comparison's variants back to back, rotated by the round number.
 */
export async function runEncryptionCost(o: { db: string; rows: number; workDir: string; rounds?: number; log: (s: string) => void }): Promise<EncryptionCostReport> {
  const rounds = o.rounds ?? ENCRYPTION_ROUNDS;
  const dir = path.join(o.workDir, `encryption-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const load = os.loadavg()[0]!;
  try {
    const groups = comparisons(o.db, dir);
    const runs = new Map<string, VariantRuns>();
    for (const g of groups) for (const v of g.variants) runs.set(v.id, { id: v.id, label: v.label, wallMs: [], cpuMs: [], peakRssBytes: [] });
    const scrypt = { logN: DEFAULT_SCRYPT_LOG_N, wallMs: [] as number[], cpuMs: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      for (const g of groups) {
        const k = round % g.variants.length;
        // Backups go in one order, but each restore needs its own backup: rotation keeps both in the round.
        for (const v of [...g.variants.slice(k), ...g.variants.slice(0, k)]) {
          v.prepare();
          spawnSync('sync');
          warm(v.reads);
          const r = timed(v.spec);
          const acc = runs.get(v.id)!;
          acc.wallMs.push(r.wallMs);
          if (r.cpuMs !== null) acc.cpuMs.push(r.cpuMs);
          acc.peakRssBytes.push(r.rss);
        }
      }
      const s = timed(scryptSpec());
      scrypt.wallMs.push(s.wallMs);
      if (s.cpuMs !== null) scrypt.cpuMs.push(s.cpuMs);
      o.log(`  encryption: round ${round + 1}/${rounds} done`);
    }
    const ratios: PairedRatio[] = [];
    for (const g of groups) {
      const plain = runs.get(g.variants[0]!.id)!;
      for (const v of g.variants.slice(1)) {
        const enc = runs.get(v.id)!;
        const per = (a: number[], b: number[]): number[] => a.map((x, i) => x / b[i]!);
        const wall = per(enc.wallMs, plain.wallMs);
        const cpu = enc.cpuMs.length === rounds && plain.cpuMs.length === rounds ? per(enc.cpuMs, plain.cpuMs) : null;
        ratios.push({
          id: v.id,
          label: v.label,
          plainId: plain.id,
          plainSeconds: median(plain.wallMs) / 1000,
          seconds: median(enc.wallMs) / 1000,
          ratio: median(wall),
          spread: [Math.min(...wall), Math.max(...wall)],
          cpuRatio: cpu ? median(cpu) : null,
          cpuSpread: cpu ? [Math.min(...cpu), Math.max(...cpu)] : null,
          plainCpuSeconds: cpu ? median(plain.cpuMs) / 1000 : null,
          cpuSeconds: cpu ? median(enc.cpuMs) / 1000 : null,
          max: g.max,
          plainPeakRssBytes: maxRss(plain.peakRssBytes),
          peakRssBytes: maxRss(enc.peakRssBytes),
        });
      }
    }
    return { rows: o.rows, rounds, cpus: os.cpus().length, loadAverage: [load, os.loadavg()[0]!], variants: [...runs.values()], ratios, scrypt };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The least wall time a command of `cpuSeconds` CPU time can take on `cpus` cores, over the plain
 * command's wall time: the ratio no scheduling can beat on this machine (every core busy all along).
 */
export function cpuFloor(r: PairedRatio, cpus: number): number | null {
  return r.cpuSeconds === null ? null : r.cpuSeconds / cpus / r.plainSeconds;
}

/** The highest of the rounds' peak RSS figures, or null when one is missing. */
function maxRss(values: (number | null)[]): number | null {
  return values.length > 0 && values.every((v) => v !== null) ? Math.max(...(values as number[])) : null;
}

/** The section's Markdown. */
export function encryptionMarkdown(r: EncryptionCostReport): string {
  const x = (v: number): string => `${v.toFixed(3)}×`;
  const mb = (v: number | null): string => (v === null ? '?' : (v / 1e6).toFixed(0));
  const rows = r.ratios.map((p) => {
    const floor = cpuFloor(p, r.cpus);
    return `| ${p.label} | ${p.plainSeconds.toFixed(2)} | ${p.seconds.toFixed(2)} | **${x(p.ratio)}** | ${x(p.spread[0])} – ${x(p.spread[1])} | ` +
      `${p.cpuSeconds === null ? '?' : `${p.plainCpuSeconds!.toFixed(2)} → ${p.cpuSeconds.toFixed(2)}`} | ${p.cpuRatio === null ? '?' : `${x(p.cpuRatio)} (${x(p.cpuSpread![0])} – ${x(p.cpuSpread![1])})`} | ` +
      `${floor === null ? '?' : x(floor)} | ${mb(p.plainPeakRssBytes)} → ${mb(p.peakRssBytes)} | ≤ ${(1 + p.max).toFixed(2)}× | ${p.ratio <= 1 + p.max ? 'yes' : '**no**'} |`;
  });
  const scryptWall = median(r.scrypt.wallMs) / 1000;
  const scryptCpu = r.scrypt.cpuMs.length ? median(r.scrypt.cpuMs) / 1000 : null;
  return [
    `## Encryption's cost, paired (${r.rows.toLocaleString('en-US')} rows, ${r.rounds} rounds)`,
    '',
    'Each round runs the plain command and its encrypted twins back to back (rotating which goes first; `sync` and the input read into the page cache before each); ' +
      'the ratio is the median over rounds of encrypted / plain within a round, with the lowest and highest per-round ratio. ' +
      `CPU = user + system of the whole process (all threads, GNU time). "CPU floor" = encrypted CPU s / ${r.cpus} cores / plain wall s: ` +
      'the ratio no overlap of threads can beat on this machine (telling only when it is otherwise idle: under load the plain wall time grows, and the floor falls with it; ' +
      'then the CPU ratio is what the wall ratio tends to).',
    '',
    '| job | plain s | encrypted s | ratio (median) | spread | CPU s plain → encrypted | CPU ratio (spread) | CPU floor | peak RSS MB plain → encrypted | target | met |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |',
    ...rows,
    '',
    `scrypt 2^${r.scrypt.logN} (r = 8, p = 1) alone, in a process of its own once a round: median ${scryptWall.toFixed(2)} s wall` +
      `${scryptCpu === null ? '' : `, ${scryptCpu.toFixed(2)} s CPU`}. Load average ${r.loadAverage.map((v) => v.toFixed(2)).join(' → ')} (start → end), ${r.cpus} CPUs.`,
    '',
  ].join('\n');
}
