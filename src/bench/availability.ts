/**
 * Which of the benchmark's optional cases this machine and this build can run: restic (a peer from
 * Debian's `restic` package) and scriptorium's encrypted repository (`init --encrypt`). A case that
 * cannot run is reported as "not available", with the reason, instead of failing the benchmark.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cliNodeFlags } from '../cli/node-flags.js';
import { CLI_PATH, ENCRYPTED_ENV } from './cases.js';

/** What can run: for each optional feature, either available or the reason it is not. */
export interface Availability {
  /** restic's version (e.g. `0.14.0`), or null when it cannot be run. */
  restic: string | null;
  /** `scriptorium init --encrypt` works in this build. */
  encryptedRepository: boolean;
  /** `scriptorium export --encrypt` works in this build. */
  encryptedExport: boolean;
  /** Why each missing feature is missing (keyed `restic`, `encryptedRepository`, `encryptedExport`). */
  reasons: Record<string, string>;
}

/** restic's version, or the reason it cannot be run. */
export function resticVersion(cmd = 'restic'): { version: string } | { reason: string } {
  const r = spawnSync(cmd, ['version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { reason: `restic is not installed (apt-get install restic)${r.error ? '' : `: ${r.stderr.trim()}`}` };
  const m = /restic (\d+\.\d+(\.\d+)?)/.exec(r.stdout);
  return { version: m ? m[1]! : r.stdout.trim() };
}

/**
 * Whether this build's `init --encrypt` creates an encrypted repository: tried for real, in a temporary
 * directory, with the benchmark's passphrase in the environment. A build without it rejects the option
 * (commander: "unknown option"), which is the "not available" case; anything else it prints is kept as
 * the reason.
 */
export function encryptedInitWorks(): { ok: true } | { ok: false; reason: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scriptorium-bench-probe-'));
  try {
    const r = spawnSync(process.execPath, [...cliNodeFlags(), CLI_PATH, 'init', '--encrypt', path.join(dir, 'repo'), '--quiet'], {
      encoding: 'utf8',
      env: { ...process.env, ...ENCRYPTED_ENV },
      timeout: 120_000,
    });
    if (r.status === 0) return { ok: true };
    const why = (r.stderr || r.error?.message || '').trim().split('\n')[0] ?? '';
    return { ok: false, reason: /unknown option/i.test(why) ? 'this build has no `init --encrypt`' : `\`init --encrypt\` failed: ${why}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether this build's `export --encrypt` is listed by `export --help`. */
function encryptedExportListed(): boolean {
  const r = spawnSync(process.execPath, [...cliNodeFlags(), CLI_PATH, 'export', '--help'], { encoding: 'utf8' });
  return r.status === 0 && /--encrypt\b/.test(r.stdout);
}

/** Probes restic and the encrypted repository and export. */
export function probeAvailability(): Availability {
  const reasons: Record<string, string> = {};
  const restic = resticVersion();
  if ('reason' in restic) reasons.restic = restic.reason;
  const enc = encryptedInitWorks();
  if (!enc.ok) reasons.encryptedRepository = enc.reason;
  const exp = encryptedExportListed();
  if (!exp) reasons.encryptedExport = 'this build has no `export --encrypt`';
  return { restic: 'version' in restic ? restic.version : null, encryptedRepository: enc.ok, encryptedExport: exp, reasons };
}
