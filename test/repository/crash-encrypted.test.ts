/**
 * Crash safety on encrypted repositories (issue 14), against real processes: the kill-at-random-moments
 * scenario of processes.test.ts, backups and prunes killed with SIGKILL, on a passphrase repository and
 * on a public-key one (whose backup host has only its passphrase, and whose prune has the identity).
 * Afterwards `verify --read-data` passes with the identity, the last complete snapshot restores exactly
 * the database it was taken of, and a new backup works and restores.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { X25519Identity } from '../../src/codecs/age-keys.js';
import { forget, init, restore, snapshots, verify } from '../../src/repository/index.js';
import { requireBuild, runChild, sleep, type Run } from './child-runs.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

const child = fileURLToPath(new URL('./fixtures/crypt-child.mjs', import.meta.url));

beforeAll(requireBuild);

const run = (env: Record<string, string>, ...args: string[]): Run => runChild(child, args, env);
const PASSPHRASE = 'crash test passphrase';

for (const mode of ['passphrase', 'public-key'] as const) {
  describe(`crash safety, ${mode} repository`, { timeout: 400_000 }, () => {
    it('backups and prunes killed with SIGKILL at random moments: verify --read-data passes, the last complete snapshot restores exactly, a new backup works', async () => {
      const dir = tempDir(`crash-${mode}`);
      const db = demoDb(dir, 5000);
      const repoDir = join(dir, 'repo');
      const generated = mode === 'public-key' ? X25519Identity.generate() : undefined;
      await init(repoDir, {
        packBytes: 32 * 1024,
        encryption: { passphrase: Buffer.from(PASSPHRASE), scryptLogN: 10, ...(generated ? { recipient: generated.identity.recipient } : {}) },
      });
      // What reads data has the identity; the backup host (the children's backups) has only the passphrase.
      const reader = { keys: { passphrase: async () => Buffer.from(PASSPHRASE), identities: generated ? [generated.identity] : [], scryptLogN: 10 } };
      const hostEnv = { SCRIPTORIUM_TEST_PASSPHRASE: PASSPHRASE };
      const readerEnv = { ...hostEnv, ...(generated ? { SCRIPTORIUM_TEST_IDENTITY: generated.secretKey } : {}) };
      /** The database's digests when each complete snapshot was taken, by snapshot id. */
      const expected = new Map<string, Record<string, string>>();
      const latest = async () => {
        const list = await snapshots(repoDir, reader);
        return { count: list.length, id: list[list.length - 1]?.id };
      };

      const full = run(hostEnv, 'backup', db, repoDir);
      await full.started;
      const t1 = Date.now();
      const first = await full.done;
      expect(first.code, first.stderr).toBe(0);
      const duration = Math.max(50, Date.now() - t1);
      expected.set(JSON.parse(first.stdout.split('\n')[1]!).id as string, await engineDigests(db));

      const Database = (await import('better-sqlite3')).default;
      let { count: completed } = await latest();
      let killed = 0;
      let prunes = 0;
      for (let i = 0; i < 14; i++) {
        const pruning = i % 3 === 2;
        if (pruning) {
          // Something for prune to do: the oldest snapshot goes (plus what killed backups left).
          const list = await snapshots(repoDir, reader);
          if (list.length > 1) await forget(repoDir, { ...reader, ids: [list[0]!.id] });
          completed = (await latest()).count;
        } else {
          // Change most rows, so that every backup writes many new packs.
          const conn = new Database(db);
          conn.prepare('UPDATE regs SET updatedAt = ?').run(`run ${i}`);
          conn.close();
        }
        const r = pruning ? run(readerEnv, 'prune', repoDir) : run(hostEnv, 'backup', db, repoDir);
        await r.started;
        await sleep(Math.random() * duration * (pruning ? 0.6 : 1.2));
        r.proc.kill('SIGKILL');
        const { signal, code, stderr } = await r.done;
        if (signal === 'SIGKILL') killed++;
        else expect(code, stderr).toBe(0); // one that ended before the kill ended well
        if (pruning) prunes++;
        const now = await latest();
        if (pruning) expect(now.count).toBe(completed); // prune never removes a snapshot
        else {
          // No new snapshot, or a complete one (killed after its manifest was written).
          expect(now.count - completed).toBeGreaterThanOrEqual(0);
          expect(now.count - completed).toBeLessThanOrEqual(1);
          if (now.count > completed) expected.set(now.id!, await engineDigests(db));
        }
        completed = now.count;
        await verify(repoDir, reader);
      }
      expect(killed).toBeGreaterThan(4);
      expect(prunes).toBeGreaterThan(3);

      const report = await verify(repoDir, { ...reader, readData: true });
      expect(report.problems).toEqual([]);
      expect(report.tablesRead).toBeGreaterThan(0);
      const { id: lastId } = await latest();
      expect(expected.has(lastId!)).toBe(true);
      const out = join(dir, 'out.db');
      await restore('latest', repoDir, { ...reader, into: out });
      expect(await engineDigests(out)).toEqual(expected.get(lastId!));

      // A new backup on top of whatever the kills left, restored exactly.
      const conn = new Database(db);
      conn.prepare('UPDATE regs SET updatedAt = ?').run('after the crashes');
      conn.close();
      const last = run(hostEnv, 'backup', db, repoDir);
      const done = await last.done;
      expect(done.code, done.stderr).toBe(0);
      const again = join(dir, 'again.db');
      await restore('latest', repoDir, { ...reader, into: again });
      expect(await engineDigests(again)).toEqual(await engineDigests(db));
      expect((await verify(repoDir, { ...reader, readData: true })).problems).toEqual([]);
    });
  });
}
