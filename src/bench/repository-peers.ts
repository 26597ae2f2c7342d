/**
 * The repositories the deduplication scenarios fill beside our default one (see {@link runDedup}):
 * restic, fed `sqlite3 .dump` on stdin as the issue measures it, and our encrypted repository, through
 * the CLI (`init --encrypt`, `backup`) with the passphrase in the environment. Each backup runs as its
 * own process; only the bytes on disk are compared, the times are informational.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { cliNodeFlags } from '../cli/node-flags.js';
import { CLI_PATH, ENCRYPTED_ENV, freshResticRepository, resticBackupSpec } from './cases.js';
import type { DedupPeer } from './dedup.js';
import type { CommandSpec } from './process.js';

/** Runs `spec` to completion; throws with its stderr when it fails. */
function runSpec(spec: CommandSpec): void {
  const r = spawnSync(spec.cmd, spec.args, { encoding: 'utf8', env: { ...process.env, ...spec.env }, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error || r.status !== 0) throw new Error(`${spec.cmd} ${spec.args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
}

/** restic, one snapshot of `sqlite3 .dump` per scenario, into one repository (cache beside it). */
export function resticDedupPeer(sqlite3 = 'sqlite3'): DedupPeer {
  const cache = (repo: string): string => path.join(path.dirname(repo), `${path.basename(repo)}-cache`);
  return {
    id: 'restic',
    label: 'restic (sqlite3 .dump | restic backup --stdin)',
    init: (repo) => freshResticRepository(repo, cache(repo)),
    backup: (file, repo) => runSpec(resticBackupSpec(file, repo, cache(repo), sqlite3)),
  };
}

/** Our encrypted repository (`init --encrypt`), backed up through the CLI. */
export function encryptedDedupPeer(): DedupPeer {
  const cli = (...args: string[]): CommandSpec => ({ cmd: process.execPath, args: [...cliNodeFlags(), CLI_PATH, ...args, '--quiet'], env: { ...ENCRYPTED_ENV } });
  return {
    id: 'scriptorium-encrypted',
    label: 'scriptorium (encrypted)',
    init: (repo) => runSpec(cli('init', '--encrypt', repo)),
    backup: (file, repo) => runSpec(cli('backup', file, '--repo', repo)),
  };
}
