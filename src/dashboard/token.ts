/**
 * The dashboard's token: `SCRIPTORIUM_TOKEN`, or one generated on first start and stored with mode 0600
 * in the user's config folder (`$XDG_CONFIG_HOME/scriptorium/dashboard-token`, else
 * `~/.config/scriptorium/dashboard-token`). It is sent as `Authorization: Bearer …`, never in a cookie.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ScriptoriumError } from '../core/errors.js';

export interface DashboardToken {
  token: string;
  /** Where it came from. */
  source: 'env' | 'file' | 'generated';
  /** The file, when it is stored in one. */
  file?: string;
}

/** The file the token is kept in. */
export function tokenFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'scriptorium', 'dashboard-token');
}

const VALID = /^[A-Za-z0-9._~+/=-]{16,512}$/;

/**
 * The token from the environment, else the stored one, else a new one (stored).
 *
 * @throws ScriptoriumError E_CONFIG when SCRIPTORIUM_TOKEN or the stored token is too short or has
 *   characters a header cannot carry.
 */
export function resolveToken(env: NodeJS.ProcessEnv = process.env): DashboardToken {
  const fromEnv = env.SCRIPTORIUM_TOKEN;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!VALID.test(fromEnv)) throw new ScriptoriumError('E_CONFIG', 'SCRIPTORIUM_TOKEN must be 16 to 512 letters, digits or ._~+/=-', { hint: 'generate one with `openssl rand -hex 32`' });
    return { token: fromEnv, source: 'env' };
  }
  const file = tokenFile(env);
  try {
    const stored = readFileSync(file, 'utf8').trim();
    if (!VALID.test(stored)) throw new ScriptoriumError('E_CONFIG', `the dashboard token in ${file} is not valid`, { hint: `delete ${file}: a new one is generated` });
    chmodSync(file, 0o600);
    return { token: stored, source: 'file', file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('base64url');
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { token, source: 'generated', file };
}

/** True when an `Authorization` header carries exactly `Bearer <token>` (compared in constant time). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice('Bearer '.length).trim());
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}
