/**
 * `scriptorium demo --engine postgres`: the demo database loaded into a real PostgreSQL (by URL, and
 * from the PG* variables), exported from it in every format and imported back into SQLite, every
 * import verified table by table.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../export-import/helpers.js';
import { PG_SKIP, freshDatabase, textRows } from './pg-helpers.js';

const dir = tempDir('pg-demo');
afterAll(() => removeDir(dir));
const CLI = path.resolve('dist/cli/main.js');

// Each test runs the CLI ten times: minutes on a loaded machine.
describe.skipIf(PG_SKIP)('demo --engine postgres', { timeout: 240_000 }, () => {
  it('loads the demo database into PostgreSQL by URL, exports it in every format and imports each back, all verified', async () => {
    const target = await freshDatabase('demo');
    const r = spawnSync(process.execPath, [CLI, 'demo', '--engine', 'postgres', '--into', target, '--records', '300', '--dir', path.join(dir, 'url'), '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { identical: boolean; rows: number; postgres: string; steps: { label: string; rows: number; identical?: boolean }[] };
    expect(out.identical).toBe(true);
    expect(out.postgres).not.toContain(new URL(target).password);
    expect(out.steps.map((s) => s.label)).toEqual([
      'export SQLite ndjson', 'import into PostgreSQL',
      'export PostgreSQL ndjson', 'import ndjson into SQLite', 'export PostgreSQL json', 'import json into SQLite',
      'export PostgreSQL ndjson+zstd', 'import ndjson+zstd into SQLite', 'export PostgreSQL sql',
    ]);
    expect(out.steps.every((s) => s.rows === out.rows)).toBe(true);
    expect(out.steps.filter((s) => s.identical !== undefined).every((s) => s.identical)).toBe(true);
    const counts = await textRows(target, 'SELECT (SELECT count(*) FROM regs), (SELECT count(*) FROM stays), (SELECT count(*) FROM room_bookings)');
    expect(counts).toEqual([['300', '150', '30']]);
  });

  it('takes the database from the PG* variables with --into - (the default)', async () => {
    const target = new URL(await freshDatabase('demoenv'));
    const env = { ...process.env, PGHOST: target.hostname, PGPORT: target.port, PGUSER: decodeURIComponent(target.username), PGPASSWORD: decodeURIComponent(target.password), PGDATABASE: target.pathname.slice(1) };
    const r = spawnSync(process.execPath, [CLI, 'demo', '--engine', 'postgres', '--records', '100', '--dir', path.join(dir, 'env'), '--json'], { encoding: 'utf8', env });
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { identical: boolean }).identical).toBe(true);
    expect(await textRows(target.toString(), 'SELECT count(*) FROM regs')).toEqual([['100']]);
  });

  it('refuses a database that already holds the demo tables, naming it, and changes nothing', async () => {
    const target = await freshDatabase('demotwice');
    const first = spawnSync(process.execPath, [CLI, 'demo', '--engine', 'postgres', '--into', target, '--records', '50', '--dir', path.join(dir, 'twice'), '-q'], { encoding: 'utf8' });
    expect(first.status, first.stderr).toBe(0);
    const again = spawnSync(process.execPath, [CLI, 'demo', '--engine', 'postgres', '--into', target, '--records', '60', '--dir', path.join(dir, 'twice'), '-q'], { encoding: 'utf8' });
    expect(again.status).not.toBe(0);
    expect(again.stderr).toContain('E_TARGET_EXISTS');
    expect(await textRows(target, 'SELECT count(*) FROM regs')).toEqual([['50']]);
  });
});
