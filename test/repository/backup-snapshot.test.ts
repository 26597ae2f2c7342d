/**
 * A backup through the built CLI is one snapshot while another process commits, in WAL and in
 * rollback-journal mode. The main connection reads the schema and the database header (user_version
 * and the rest of the snapshot's meta); a background reader (a second connection of the extension's,
 * scriptorium_reader in native/scriptorium_scan.inc) reads the rows. A write hold
 * (src/engines/sqlite/writer-hold.ts) keeps commits out until both are in their read transactions.
 *
 * The writer commits small transactions as fast as it can, each adding a row to debit and to credit,
 * moving an amount between two far-apart debit rows and counting itself in user_version. A restored
 * snapshot must show whole transactions only: equal counts, balanced totals, and a user_version that
 * matches the rows (ledgerDb's rows + one per transaction). Both tables are read by the background
 * reader, so it is user_version that catches a reader that began after a commit the main connection
 * did not see: without the hold, in WAL mode, about every other backup here does.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cli, cliAsync, ledgerDb, removeDir, tempDir, whileLedgerCommits, withDb } from '../export-import/helpers.js';

/** A background reader whatever the machine (backup opens at most one). */
const ENV = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_READERS: '2' };
const ROWS = 80_000;
/**
 * Backups per case. In WAL mode each has about even odds of catching a reader that began after a commit
 * (see above), so five make a miss rare; in rollback-journal mode the main connection's shared lock
 * keeps commits out anyway, and three show that the hold neither stalls nor mixes there.
 */
const BACKUPS = { wal: 5, delete: 3 } as const;

let dir: string;
beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('backup-snapshot');
});
afterAll(() => removeDir(dir));

interface Manifest {
  id: string;
  schema: { meta: { userVersion?: number } };
  tables: { name: string; rows: number }[];
}

describe.each(['wal', 'delete'] as const)('a backup is one snapshot while a process commits (%s journal)', (journal) => {
  it('every restored snapshot holds whole transactions, and its header matches its rows', async () => {
    const backups = BACKUPS[journal];
    const db = ledgerDb(path.join(dir, `ledger-${journal}.db`), ROWS, journal);
    const repo = path.join(dir, `repo-${journal}`);
    const init = cli(['init', repo, '--json'], { env: ENV });
    expect(init.code, init.stderr).toBe(0);
    const snapshots: Manifest[] = [];
    await whileLedgerCommits(db, ROWS, async () => {
      for (let b = 0; b < backups; b++) {
        const r = await cliAsync(['backup', db, '--repo', repo, '--json'], { env: ENV });
        expect(r.code, r.stderr).toBe(0);
        snapshots.push(JSON.parse(r.stdout) as Manifest);
      }
    });
    // (From the manifests: the killed writer may leave a hot journal that a read-only connection cannot roll back.)
    const grown = snapshots.map((s) => s.tables.find((t) => t.name === 'debit')!.rows);
    expect(grown[backups - 1]! - grown[0]!, `the writer really wrote during the backups (debit rows ${grown.join(', ')})`).toBeGreaterThan(200);
    const versions = snapshots.map((s) => s.schema.meta.userVersion ?? 0);
    expect(new Set(versions).size, `the writer committed between the backups (user_version ${versions.join(', ')})`).toBe(backups);

    for (const [b, snap] of snapshots.entries()) {
      const into = path.join(dir, `restored-${journal}-${b}.db`);
      const r = cli(['restore', snap.id, '--repo', repo, '--into', into, '--json'], { env: ENV });
      expect(r.code, r.stderr).toBe(0);
      const [debits, credits, balance, version] = withDb(into, (x) => [
        Number(x.prepare('SELECT count(*) FROM debit').pluck().get() as bigint),
        Number(x.prepare('SELECT count(*) FROM credit').pluck().get() as bigint),
        x.prepare('SELECT (SELECT total(amount) FROM debit) - (SELECT total(amount) FROM credit)').pluck().get() as number,
        Number(x.pragma('user_version', { simple: true }) as bigint),
      ]);
      expect(debits, `backup ${b + 1}: count(debit) = count(credit)`).toBe(credits);
      expect(balance, `backup ${b + 1}: every move is whole`).toBe(0);
      expect(debits - ROWS, `backup ${b + 1}: the rows (background reader) are at the snapshot of user_version ${version} (main connection)`).toBe(version);
    }
    const v = cli(['verify', '--repo', repo, '--read-data', '--json'], { env: ENV });
    expect(v.code, v.stderr + v.stdout).toBe(0);
  }, 60_000);
});
