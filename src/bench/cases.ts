import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliNodeFlags } from '../cli/node-flags.js';
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
  /** Resets state before each run (removes outputs, so every run starts fresh); not timed. */
  prepare: () => void | Promise<void>;
  spec: CommandSpec;
}

/** The scriptorium CLI entry point compiled beside this file (dist/cli/main.js). */
export const CLI_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

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

/**
 * The benchmark's cases for one database, in run order: exports before the imports that read their
 * files, `backup` before the `restore` that reads its repository, `sqlite3 .dump | zstd` before the
 * `zstd -dc | sqlite3` that reads its file.
 * `tables` are the user tables, used for the `sqlite3 -json` peer (one process selecting every table).
 */
export function benchCases(db: string, tables: string[], dir: string, sqlite3 = 'sqlite3'): BenchCase[] {
  const f = (name: string): string => path.join(dir, name);
  const node = process.execPath;
  const ours = (id: string, label: string, peer: string, bytesFile: string, prepare: BenchCase['prepare'], args: string[]): BenchCase => ({
    id,
    label,
    side: 'ours',
    peer,
    bytesFile,
    prepare,
    spec: { cmd: node, args: [...cliNodeFlags(), CLI_PATH, ...args, '--json'] },
  });
  const exportCase = (id: string, label: string, peer: string, file: string, extra: string[]): BenchCase =>
    ours(id, label, peer, file, rm(file), ['export', db, ...extra, '-o', file]);
  const importCase = (id: string, label: string, file: string): BenchCase => {
    const into = f(`${id}.db`);
    return ours(id, label, 'sqlite3-restore', file, () => removeDatabase(into), ['import', file, '--into', into]);
  };
  const selectAll = tables.map((t) => `SELECT * FROM ${ident(t)};`).join(' ');
  const restored = f('sqlite3-restore.db');
  const repo = f('repo');
  const repoRestored = f('restore.db');
  const zstdRestored = f('zstd-restore.db');
  return [
    exportCase('export-ndjson', 'export ndjson', 'sqlite3-json', f('out.ndjson'), ['--format', 'ndjson']),
    exportCase('export-json', 'export json', 'sqlite3-json', f('out.json'), ['--format', 'json']),
    exportCase('export-sql', 'export sql', 'sqlite3-dump', f('out.sql'), ['--format', 'sql']),
    exportCase('export-ndjson-zstd', 'export ndjson+zstd', 'sqlite3-dump-zstd', f('out.ndjson.zst'), ['--format', 'ndjson', '--compress', 'zstd']),
    importCase('import-ndjson', 'import ndjson', f('out.ndjson')),
    importCase('import-json', 'import json', f('out.json')),
    importCase('import-sql', 'import sql', f('out.sql')),
    // A fresh repository every run (init is not timed), so each backup is a first, full snapshot.
    ours('backup', 'backup', 'sqlite3-dump-zstd', repo, () => freshRepository(repo), ['backup', db, '--repo', repo]),
    // Restores the snapshot the backup case just took (same round, so the repository holds exactly one).
    ours('restore', 'restore', 'zstd-restore', repo, () => removeDatabase(repoRestored), ['restore', 'latest', '--repo', repo, '--into', repoRestored, '--force']),
    {
      id: 'sqlite3-json',
      label: 'sqlite3 -json (all tables)',
      side: 'peer',
      bytesFile: f('sqlite3.json'),
      prepare: rm(f('sqlite3.json')),
      spec: { cmd: sqlite3, args: ['-json', db, selectAll], stdout: f('sqlite3.json') },
    },
    {
      id: 'sqlite3-dump',
      label: 'sqlite3 .dump',
      side: 'peer',
      bytesFile: f('dump.sql'),
      prepare: rm(f('dump.sql')),
      spec: { cmd: sqlite3, args: [db, '.dump'], stdout: f('dump.sql') },
    },
    {
      id: 'sqlite3-restore',
      label: 'sqlite3 new.db < dump.sql',
      side: 'peer',
      bytesFile: f('dump.sql'),
      prepare: () => removeDatabase(restored),
      spec: { cmd: sqlite3, args: [restored], stdin: f('dump.sql') },
    },
    {
      id: 'sqlite3-dump-zstd',
      label: 'sqlite3 .dump | zstd -T2 -3',
      side: 'peer',
      bytesFile: f('dump.sql.zst'),
      prepare: rm(f('dump.sql.zst')),
      spec: {
        cmd: 'bash',
        args: ['-c', 'set -o pipefail; "$1" "$2" .dump | zstd -q -T2 -3 > "$3"', 'bench', sqlite3, db, f('dump.sql.zst')],
      },
    },
    {
      id: 'zstd-restore',
      label: 'zstd -dc dump.sql.zst | sqlite3 new.db',
      side: 'peer',
      bytesFile: f('dump.sql.zst'),
      prepare: () => removeDatabase(zstdRestored),
      spec: {
        cmd: 'bash',
        args: ['-c', 'set -o pipefail; zstd -q -dc "$1" | "$2" "$3"', 'bench', f('dump.sql.zst'), sqlite3, zstdRestored],
      },
    },
  ];
}
