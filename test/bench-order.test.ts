// The benchmark's run order: every case reads only what ran before it in the same round, and each of
// our cases runs beside its peer, ours first in one round and the peer first in the next.
import { describe, expect, it } from 'vitest';
import { BENCH_PASSWORD, benchCases, OPTIONAL_CASE_IDS, runOrder } from '../src/bench/cases.js';

const cases = benchCases('/nowhere/demo.db', ['guests'], '/nowhere/run');
/** The case whose output each case reads. */
const READS: Record<string, string> = {
  'import-ndjson': 'export-ndjson', 'import-json': 'export-json', 'import-sql': 'export-sql',
  restore: 'backup', 'sqlite3-restore': 'sqlite3-dump', 'zstd-restore': 'sqlite3-dump-zstd',
  'restore-encrypted': 'backup-encrypted', 'restic-restore': 'restic-backup',
};

describe('bench run order', () => {
  for (const round of [0, 1, 2, 3]) {
    const order = runOrder(cases, round).map((c) => c.id);

    it(`round ${round}: runs every case once, each after the case whose output it reads`, () => {
      expect([...order].sort()).toEqual(cases.map((c) => c.id).sort());
      for (const [reader, writer] of Object.entries(READS)) expect(order.indexOf(writer)).toBeLessThan(order.indexOf(reader));
    });

    it(`round ${round}: every case reads the database or what a case before it wrote (it is read ahead, untimed)`, () => {
      const ran = runOrder(cases, round);
      ran.forEach((c, i) => {
        if (c.reads === '/nowhere/demo.db') return;
        // The writer: its bytes are that file, and it does not read it (an import's bytes are its input).
        const writer = ran.findIndex((w) => w.bytesFile === c.reads && w.reads !== c.reads);
        expect(writer, `${c.id} reads ${c.reads}`).toBeGreaterThanOrEqual(0);
        expect(writer).toBeLessThan(i);
      });
    });

    it(`round ${round}: backup and restore run right beside their peers, ${round % 2 ? 'the peer' : 'ours'} first`, () => {
      const pairs = [['backup', 'sqlite3-dump-zstd'], ['restore', 'zstd-restore'], ['backup-encrypted', 'restic-backup'], ['restore-encrypted', 'restic-restore']] as const;
      for (const [ours, peer] of pairs) {
        const [a, b] = [order.indexOf(ours), order.indexOf(peer)];
        expect(Math.abs(a - b)).toBe(1);
        expect(a < b).toBe(round % 2 === 0);
      }
    });
  }

  it('runs the encrypted export right beside the same export unencrypted', () => {
    for (const round of [0, 1]) {
      const order = runOrder(cases, round).map((c) => c.id);
      expect(order.indexOf('export-sql-encrypted') - order.indexOf('export-sql')).toBe(1);
    }
  });

  it('leaves out the optional cases that cannot run, and only those', () => {
    const all = cases.map((c) => c.id);
    for (const [feature, ids] of Object.entries(OPTIONAL_CASE_IDS)) {
      const left = benchCases('/nowhere/demo.db', ['guests'], '/nowhere/run', 'sqlite3', { [feature]: false }).map((c) => c.id);
      expect(left).toEqual(all.filter((id) => !ids.includes(id)));
      for (const id of ids) expect(all).toContain(id);
    }
    // Each left-out case takes nothing else with it, and the order of the rest holds.
    const none = benchCases('/nowhere/demo.db', ['guests'], '/nowhere/run', 'sqlite3', { restic: false, encryptedRepository: false, encryptedExport: false });
    expect(none.map((c) => c.id)).toEqual(all.filter((id) => !Object.values(OPTIONAL_CASE_IDS).flat().includes(id)));
  });

  it('never puts a passphrase in an argument list: encrypted cases and restic get it in their environment', () => {
    for (const c of cases) expect(c.spec.args.join(' ')).not.toContain(BENCH_PASSWORD);
    for (const id of ['export-sql-encrypted', 'backup-encrypted', 'restore-encrypted']) expect(cases.find((c) => c.id === id)!.spec.env).toEqual({ SCRIPTORIUM_PASSWORD: BENCH_PASSWORD });
    for (const id of ['restic-backup', 'restic-restore']) expect(cases.find((c) => c.id === id)!.spec.env).toEqual({ RESTIC_PASSWORD: BENCH_PASSWORD });
  });

  it('puts every one of our cases in a group with its peer', () => {
    for (const c of cases.filter((c) => c.side === 'ours')) {
      const peer = cases.find((p) => p.id === c.peer)!;
      // export ndjson+zstd shares its peer with backup, which keeps the peer beside it; it runs with .dump.
      if (c.id !== 'export-ndjson-zstd') expect(peer.group, c.id).toBe(c.group);
    }
  });
});
