/**
 * Key commands run at once (issue 14): `key remove` and `key passwd` in concurrent CLI processes on a
 * real encrypted repository. While the test holds a shared lock (as a running backup does), both
 * commands must wait; once it is released they run one after the other under the exclusive lock, so the
 * second sees what the first did: two removes never take the last key, and two passwd of the same key
 * never both succeed (the second finds its key replaced and changes nothing).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Repository } from '../../src/repository/index.js';
import { demoDb, tempDir } from './helpers.js';

const CLI = resolve('dist/cli/main.js');
const ENV = { SCRIPTORIUM_IDENTITY_FILE: undefined, SCRIPTORIUM_REPO: undefined, SCRIPTORIUM_SCRYPT_LOG_N: '10' };

interface Run { code: number | null; stdout: string; stderr: string }

function cli(cwd: string, args: string[], env: Record<string, string | undefined>): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...ENV, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts the CLI without waiting; `done` settles when it exits, `exited` says whether it has. */
function start(cwd: string, args: string[], env: Record<string, string | undefined>): { done: Promise<Run>; exited: () => boolean } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...ENV, ...env } });
  let stdout = '';
  let stderr = '';
  let over = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((ok) => child.on('close', (code) => {
    over = true;
    ok({ code, stdout, stderr });
  }));
  return { done, exited: () => over };
}

const keyFiles = (repo: string): string[] => fs.readdirSync(join(repo, 'keys')).sort();

/** An encrypted repository with one snapshot and two passphrase keys; returns their ids. */
function twoKeys(dir: string): { a: string; b: string } {
  const db = demoDb(dir, 200);
  expect(cli(dir, ['init', '--encrypt', 'repo'], { SCRIPTORIUM_PASSWORD: 'pass A' }).code).toBe(0);
  expect(cli(dir, ['backup', '--repo', 'repo', db], { SCRIPTORIUM_PASSWORD: 'pass A' }).code).toBe(0);
  const added = cli(dir, ['key', 'add', '--repo', 'repo', '--json'], { SCRIPTORIUM_PASSWORD: 'pass A', SCRIPTORIUM_NEW_PASSWORD: 'pass B' });
  expect(added.code, added.stderr).toBe(0);
  const b = JSON.parse(added.stdout).added as string;
  const a = keyFiles(join(dir, 'repo')).find((k) => k !== b)!;
  return { a, b };
}

/**
 * Holds a shared lock on `repo` (as a backup does) while `commands` start, checks that none of them
 * finishes or touches a key while it is held, then releases it and returns their results.
 */
async function raceBehindSharedLock(dir: string, commands: Array<{ args: string[]; env: Record<string, string> }>): Promise<Run[]> {
  const repo = join(dir, 'repo');
  const holder = await Repository.open(repo, { keys: { passphrase: async () => Buffer.from('pass A'), scryptLogN: 10 } });
  const before = keyFiles(repo);
  const lock = await holder.lock('shared', 'backup');
  let runs: ReturnType<typeof start>[] = [];
  try {
    runs = commands.map((c) => start(dir, [...c.args, '--repo', 'repo', '--lock-wait', '120', '--json'], c.env));
    // Long enough for both to open the repository (scrypt 2^10) and reach the lock on a loaded machine.
    await sleep(3000);
    expect(runs.map((r) => r.exited()), 'a key command ran while a shared lock was held').toEqual(runs.map(() => false));
    expect(keyFiles(repo)).toEqual(before);
  } finally {
    await lock.release();
    await holder.close();
  }
  return Promise.all(runs.map((r) => r.done));
}

describe('key commands at once', { timeout: 180_000 }, () => {
  it('two concurrent removes of the two last keys: one wins, the other is refused, one key remains and opens the data', async () => {
    const dir = tempDir('key-race-rm');
    const { a, b } = twoKeys(dir);
    // Each removes the other's key: alone, each would be allowed (two keys, not the one in use).
    const [byA, byB] = await raceBehindSharedLock(dir, [
      { args: ['key', 'remove', b], env: { SCRIPTORIUM_PASSWORD: 'pass A' } },
      { args: ['key', 'remove', a], env: { SCRIPTORIUM_PASSWORD: 'pass B' } },
    ]);
    const results = [byA!, byB!];
    expect(results.filter((r) => r.code === 0), results.map((r) => r.stderr).join('\n')).toHaveLength(1);
    const refused = results.find((r) => r.code !== 0)!;
    expect(refused.stderr).toMatch(/E_USAGE.*last key/);
    const left = keyFiles(join(dir, 'repo'));
    expect(left).toHaveLength(1);
    const survivor = left[0] === a ? 'pass A' : 'pass B';
    expect(left[0] === a ? byA!.code : byB!.code, 'the survivor is the key of the command that won').toBe(0);
    const restored = cli(dir, ['restore', 'latest', '--repo', 'repo', '--into', 'back.db'], { SCRIPTORIUM_PASSWORD: survivor });
    expect(restored.code, restored.stderr).toBe(0);
  });

  it('two concurrent passwd of the same key: one replaces it, the other changes nothing; no key is lost', async () => {
    const dir = tempDir('key-race-pw');
    const { b } = twoKeys(dir);
    const [toC, toD] = await raceBehindSharedLock(dir, [
      { args: ['key', 'passwd'], env: { SCRIPTORIUM_PASSWORD: 'pass A', SCRIPTORIUM_NEW_PASSWORD: 'pass C' } },
      { args: ['key', 'passwd'], env: { SCRIPTORIUM_PASSWORD: 'pass A', SCRIPTORIUM_NEW_PASSWORD: 'pass D' } },
    ]);
    const results = [toC!, toD!];
    expect(results.filter((r) => r.code === 0), results.map((r) => r.stderr).join('\n')).toHaveLength(1);
    const lost = results.find((r) => r.code !== 0)!;
    expect(lost.stderr).toMatch(/E_USAGE.*removed meanwhile/);
    const won = toC!.code === 0 ? 'pass C' : 'pass D';
    const other = won === 'pass C' ? 'pass D' : 'pass C';
    const { added } = JSON.parse((toC!.code === 0 ? toC! : toD!).stdout) as { added: string };
    // Exactly the second key and the winner's new one: the loser added nothing, the old key is gone.
    expect(keyFiles(join(dir, 'repo'))).toEqual([b, added].sort());
    for (const [pass, opens] of [[won, true], [other, false], ['pass A', false], ['pass B', true]] as const) {
      const r = cli(dir, ['snapshots', '--repo', 'repo'], { SCRIPTORIUM_PASSWORD: pass });
      if (opens) expect(r.code, `${pass}: ${r.stderr}`).toBe(0);
      else expect(r.stderr, pass).toMatch(/E_AUTH/);
    }
  });

});
