import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliNodeFlags } from '../cli/node-flags.js';
import { X25519Identity } from '../codecs/age-keys.js';
import { init } from '../repository/index.js';
import { removeDatabase, type CommandSpec } from './process.js';

/** Who runs a case: scriptorium itself or the reference tool it is compared against. */
export type Side = 'ours' | 'peer';

/** One command measured at every size. */
export interface BenchCase {
  /** Stable identifier, e.g. `export-ndjson` or `sqlite3-dump`. */
  id: string;
  /** Human label used in reports. */
  label: string;
  side: Side;
  /** For our cases: the id of the peer case doing the same job. */
  peer?: string;
  /**
   * File (or directory: the sum of its files) whose size counts as the bytes moved: the output of an
   * export or a backup, the input of an import or a restore.
   */
  bytesFile: string;
  /**
   * What the case reads (the database, an export file, the repository directory): read once before
   * every run, untimed, so that every run starts with it in the page cache. Otherwise whichever side runs
   * first after the imports (which push the database out of a small page cache) reads it from disk.
   */
  reads: string;
  /** Resets state before each run (removes outputs, so every run starts fresh); not timed. */
  prepare: () => void | Promise<void>;
  spec: CommandSpec;
  /**
   * The cases of a group run next to each other, ours and the peers doing the same job, so that both
   * sides meet the same machine (the page cache, the writeback of the case before); see {@link runOrder}.
   */
  group: number;
}

/**
 * The order of one round: group by group, with our cases first in even rounds and the peers first in
 * odd ones, so that neither side always follows the other (a case that runs right after a heavy writer
 * pays for its writeback). Within a side, cases keep their order in `cases`; every case still runs
 * after the ones whose output it reads, since those are in an earlier group or on the same side.
 */
export function runOrder(cases: BenchCase[], round: number): BenchCase[] {
  const first: Side = round % 2 === 0 ? 'ours' : 'peer';
  const groups = [...new Set(cases.map((c) => c.group))].sort((a, b) => a - b);
  return groups.flatMap((g) => {
    const inGroup = cases.filter((c) => c.group === g);
    return [...inGroup.filter((c) => c.side === first), ...inGroup.filter((c) => c.side !== first)];
  });
}

/** The scriptorium CLI entry point compiled beside this file (dist/cli/main.js). */
export const CLI_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

/**
 * The passphrase of the benchmark's encrypted repositories, exports and restic repositories. It is
 * handed to children in their environment only (SCRIPTORIUM_PASSWORD, RESTIC_PASSWORD), never as an
 * argument; it protects nothing but throw-away benchmark data.
 */
export const BENCH_PASSWORD = 'scriptorium-bench-passphrase';
/** The environment a child needs for the benchmark's encrypted cases. */
export const ENCRYPTED_ENV: Readonly<Record<string, string>> = { SCRIPTORIUM_PASSWORD: BENCH_PASSWORD };
/** The environment restic needs (its repository passphrase). */
export const RESTIC_ENV: Readonly<Record<string, string>> = { RESTIC_PASSWORD: BENCH_PASSWORD };

/**
 * Run groups, in run order: each holds cases of ours and the peer cases they are compared with. The
 * encrypted backup runs beside restic's (restic always encrypts), after the plain backup and its peer;
 * each restore after the backup whose repository it reads.
 */
const GROUP = { json: 0, dump: 1, import: 2, compressed: 3, encrypted: 4, decompress: 5, decrypt: 6 } as const;

/** The optional cases {@link benchCases} includes (all by default); see `availability.ts`. */
export interface OptionalCases {
  /** restic as the peer of the encrypted backup and restore (`restic-backup`, `restic-restore`). */
  restic?: boolean;
  /** The encrypted repository: `backup-encrypted`, `restore-encrypted` (needs `init --encrypt`). */
  encryptedRepository?: boolean;
  /** `export-sql-encrypted` and `export-sql-recipient` (`export --format sql --encrypt` / `--recipient`, age files). */
  encryptedExport?: boolean;
}

/** The ids of the cases each optional feature adds. */
export const OPTIONAL_CASE_IDS: Record<keyof OptionalCases, string[]> = {
  restic: ['restic-backup', 'restic-restore'],
  encryptedRepository: ['backup-encrypted', 'restore-encrypted'],
  encryptedExport: ['export-sql-encrypted', 'export-sql-recipient'],
};

/** SQLite identifier quoting. */
const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

const rm = (...files: string[]) => (): void => {
  for (const f of files) fs.rmSync(f, { force: true });
};

/** Removes `dir` and creates an empty backup repository there (default settings, like `scriptorium init`). */
async function freshRepository(dir: string): Promise<void> {
  fs.rmSync(dir, { recursive: true, force: true });
  await init(dir);
}

/** Runs a setup command (not timed) and fails with its stderr if it fails. */
function setup(cmd: string, args: string[], env: Readonly<Record<string, string>>): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
}

/** Removes `dir` and creates an empty encrypted repository there (`scriptorium init --encrypt`). */
function freshEncryptedRepository(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  setup(process.execPath, [...cliNodeFlags(), CLI_PATH, 'init', '--encrypt', dir, '--quiet'], ENCRYPTED_ENV);
}

/**
 * Removes `dir` and `cache` and creates an empty restic repository in `dir` (restic's defaults: format
 * 2, compression auto). The cache is kept beside it, so that runs never share one.
 */
export function freshResticRepository(dir: string, cache: string, restic = 'restic'): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(cache, { recursive: true, force: true });
  setup(restic, ['init', '--quiet', '--repo', dir, '--cache-dir', cache], RESTIC_ENV);
}

/**
 * `sqlite3 db .dump | restic backup --stdin` as a bash pipeline (pipefail), the dump stored as
 * `dump.sql`; RESTIC_PASSWORD is in the environment.
 */
export function resticBackupSpec(db: string, repo: string, cache: string, sqlite3 = 'sqlite3', restic = 'restic'): CommandSpec {
  return {
    cmd: 'bash',
    args: ['-c', 'set -o pipefail; "$1" "$2" .dump | "$3" backup --quiet --repo "$4" --cache-dir "$5" --stdin --stdin-filename dump.sql', 'bench', sqlite3, db, restic, repo, cache],
    env: { ...RESTIC_ENV },
  };
}

/**
 * The benchmark's cases for one database, in report order, each with its run group (see
 * {@link runOrder}): exports before the imports that read their files, `backup` before the `restore`
 * that reads its repository, `sqlite3 .dump` before `sqlite3 new.db < dump.sql`, and `sqlite3 .dump |
 * zstd` before the `zstd -dc | sqlite3` that reads its file.
 * `tables` are the user tables, used for the `sqlite3 -json` peer (one process selecting every table).
 */
export function benchCases(db: string, tables: string[], dir: string, sqlite3 = 'sqlite3', optional: OptionalCases = {}): BenchCase[] {
  const f = (name: string): string => path.join(dir, name);
  const node = process.execPath;
  const ours = (
    group: number,
    id: string,
    label: string,
    peer: string,
    bytesFile: string,
    reads: string,
    prepare: BenchCase['prepare'],
    args: string[],
    env?: Readonly<Record<string, string>>,
  ): BenchCase => ({
    id,
    label,
    side: 'ours',
    peer,
    bytesFile,
    reads,
    prepare,
    spec: { cmd: node, args: [...cliNodeFlags(), CLI_PATH, ...args, '--json'], ...(env ? { env: { ...env } } : {}) },
    group,
  });
  const exportCase = (group: number, id: string, label: string, peer: string, file: string, extra: string[]): BenchCase =>
    ours(group, id, label, peer, file, db, rm(file), ['export', db, ...extra, '-o', file]);
  const importCase = (id: string, label: string, file: string): BenchCase => {
    const into = f(`${id}.db`);
    return ours(GROUP.import, id, label, 'sqlite3-restore', file, file, () => removeDatabase(into), ['import', file, '--into', into]);
  };
  const selectAll = tables.map((t) => `SELECT * FROM ${ident(t)};`).join(' ');
  const restored = f('sqlite3-restore.db');
  const repo = f('repo');
  const repoRestored = f('restore.db');
  const zstdRestored = f('zstd-restore.db');
  const encRepo = f('repo-encrypted');
  const encRestored = f('restore-encrypted.db');
  const resticRepo = f('restic-repo');
  const resticCache = f('restic-cache');
  const resticRestored = f('restic-restore.db');
  const all: BenchCase[] = [
    exportCase(GROUP.json, 'export-ndjson', 'export ndjson', 'sqlite3-json', f('out.ndjson'), ['--format', 'ndjson']),
    exportCase(GROUP.json, 'export-json', 'export json', 'sqlite3-json', f('out.json'), ['--format', 'json']),
    exportCase(GROUP.dump, 'export-sql', 'export sql', 'sqlite3-dump', f('out.sql'), ['--format', 'sql']),
    // Right after the same export unencrypted (the bound is on the difference).
    ours(GROUP.dump, 'export-sql-encrypted', 'export sql --encrypt (age)', 'sqlite3-dump', f('out.sql.age'), db, rm(f('out.sql.age')), ['export', db, '--format', 'sql', '--encrypt', '-o', f('out.sql.age')], ENCRYPTED_ENV),
    // To an X25519 recipient (public-key mode: no scrypt, only the STREAM payload), a fresh key per run.
    ours(GROUP.dump, 'export-sql-recipient', 'export sql --recipient (age)', 'sqlite3-dump', f('out-recipient.sql.age'), db, rm(f('out-recipient.sql.age')), ['export', db, '--format', 'sql', '--recipient', X25519Identity.generate().identity.recipient.toString(), '-o', f('out-recipient.sql.age')]),
    exportCase(GROUP.dump, 'export-ndjson-zstd', 'export ndjson+zstd', 'sqlite3-dump-zstd', f('out.ndjson.zst'), ['--format', 'ndjson', '--compress', 'zstd']),
    importCase('import-ndjson', 'import ndjson', f('out.ndjson')),
    importCase('import-json', 'import json', f('out.json')),
    importCase('import-sql', 'import sql', f('out.sql')),
    // A fresh repository every run (init is not timed), so each backup is a first, full snapshot.
    ours(GROUP.compressed, 'backup', 'backup', 'sqlite3-dump-zstd', repo, db, () => freshRepository(repo), ['backup', db, '--repo', repo]),
    // Restores the snapshot the backup case just took (same round, so the repository holds exactly one).
    ours(GROUP.decompress, 'restore', 'restore', 'zstd-restore', repo, repo, () => removeDatabase(repoRestored), ['restore', 'latest', '--repo', repo, '--into', repoRestored, '--force']),
    // The same, into an encrypted repository (passphrase in the environment), beside restic's.
    ours(GROUP.encrypted, 'backup-encrypted', 'backup (encrypted)', 'restic-backup', encRepo, db, () => freshEncryptedRepository(encRepo), ['backup', db, '--repo', encRepo], ENCRYPTED_ENV),
    ours(GROUP.decrypt, 'restore-encrypted', 'restore (encrypted)', 'restic-restore', encRepo, encRepo, () => removeDatabase(encRestored), ['restore', 'latest', '--repo', encRepo, '--into', encRestored, '--force'], ENCRYPTED_ENV),
    {
      id: 'sqlite3-json',
      group: GROUP.json,
      label: 'sqlite3 -json (all tables)',
      side: 'peer',
      bytesFile: f('sqlite3.json'),
      reads: db,
      prepare: rm(f('sqlite3.json')),
      spec: { cmd: sqlite3, args: ['-json', db, selectAll], stdout: f('sqlite3.json') },
    },
    {
      id: 'sqlite3-dump',
      group: GROUP.dump,
      label: 'sqlite3 .dump',
      side: 'peer',
      bytesFile: f('dump.sql'),
      reads: db,
      prepare: rm(f('dump.sql')),
      spec: { cmd: sqlite3, args: [db, '.dump'], stdout: f('dump.sql') },
    },
    {
      id: 'sqlite3-restore',
      group: GROUP.import,
      label: 'sqlite3 new.db < dump.sql',
      side: 'peer',
      bytesFile: f('dump.sql'),
      reads: f('dump.sql'),
      prepare: () => removeDatabase(restored),
      spec: { cmd: sqlite3, args: [restored], stdin: f('dump.sql') },
    },
    {
      id: 'sqlite3-dump-zstd',
      group: GROUP.compressed,
      label: 'sqlite3 .dump | zstd -T2 -3',
      side: 'peer',
      bytesFile: f('dump.sql.zst'),
      reads: db,
      prepare: rm(f('dump.sql.zst')),
      spec: {
        cmd: 'bash',
        args: ['-c', 'set -o pipefail; "$1" "$2" .dump | zstd -q -T2 -3 > "$3"', 'bench', sqlite3, db, f('dump.sql.zst')],
      },
    },
    {
      id: 'zstd-restore',
      group: GROUP.decompress,
      label: 'zstd -dc dump.sql.zst | sqlite3 new.db',
      side: 'peer',
      bytesFile: f('dump.sql.zst'),
      reads: f('dump.sql.zst'),
      prepare: () => removeDatabase(zstdRestored),
      spec: {
        cmd: 'bash',
        args: ['-c', 'set -o pipefail; zstd -q -dc "$1" | "$2" "$3"', 'bench', f('dump.sql.zst'), sqlite3, zstdRestored],
      },
    },
    {
      // A fresh restic repository every run (init is not timed), like our backup's.
      id: 'restic-backup',
      group: GROUP.encrypted,
      label: 'sqlite3 .dump | restic backup --stdin',
      side: 'peer',
      bytesFile: resticRepo,
      reads: db,
      prepare: () => freshResticRepository(resticRepo, resticCache),
      spec: resticBackupSpec(db, resticRepo, resticCache, sqlite3),
    },
    {
      id: 'restic-restore',
      group: GROUP.decrypt,
      label: 'restic dump latest dump.sql | sqlite3 new.db',
      side: 'peer',
      bytesFile: resticRepo,
      reads: resticRepo,
      prepare: () => removeDatabase(resticRestored),
      spec: {
        cmd: 'bash',
        args: ['-c', 'set -o pipefail; restic dump --quiet --repo "$1" --cache-dir "$2" latest dump.sql | "$3" "$4"', 'bench', resticRepo, resticCache, sqlite3, resticRestored],
        env: { ...RESTIC_ENV },
      },
    },
  ];
  const left = new Set<string>();
  for (const [feature, ids] of Object.entries(OPTIONAL_CASE_IDS) as [keyof OptionalCases, string[]][]) if (optional[feature] === false) for (const id of ids) left.add(id);
  return all.filter((c) => !left.has(c.id));
}
