/**
 * Attacks from the hostile review of docs/security.md that found a hole: each case is a real file
 * given to the real CLI (dist/cli/main.js), and must fail the documented way, with nothing written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cli, makeDb, removeDir, tempDir, type CliResult } from './export-import/helpers.js';

let dir: string;
let ndjson: string[];
let json: string;
beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('review-attacks');
  const db = makeDb(path.join(dir, 'src.db'), (d) => d.exec("CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'y');"));
  for (const format of ['ndjson', 'json']) {
    const r = cli(['export', db, '--format', format, '-o', path.join(dir, `src.${format}`), '-q']);
    expect(r.code, r.stderr).toBe(0);
  }
  ndjson = fs.readFileSync(path.join(dir, 'src.ndjson'), 'utf8').split('\n');
  json = fs.readFileSync(path.join(dir, 'src.json'), 'utf8');
});
afterAll(() => removeDir(dir));

function expectRefused(r: CliResult, into: string): void {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.stderr).toMatch(/^scriptorium: error E_CORRUPT: .*table "t"/m);
  expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
  expect(fs.existsSync(into)).toBe(false);
}

/** The ndjson export with its table's CREATE statement replaced (the header's columns left as they were). */
function ndjsonWith(sql: string): string {
  const table = JSON.parse(ndjson[1]!) as { table: { sql: string } };
  table.table.sql = sql;
  const file = path.join(dir, `edited-${Math.random().toString(36).slice(2)}.ndjson`);
  fs.writeFileSync(file, [ndjson[0], JSON.stringify(table), ...ndjson.slice(2)].join('\n'));
  return file;
}

describe('an export whose CREATE TABLE does not make the columns its header lists', () => {
  for (const noExtension of ['0', '1']) {
    const env = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_NO_EXTENSION: noExtension };
    it(`an extra column whose DEFAULT runs on every inserted row (randomblob) is refused before any row loads (SCRIPTORIUM_NO_EXTENSION=${noExtension})`, () => {
      const into = path.join(dir, `default-${noExtension}.db`);
      const r = cli(['import', ndjsonWith('CREATE TABLE t(a INTEGER, b TEXT, c DEFAULT (randomblob(1000)))'), '--into', into], { env });
      expectRefused(r, into);
    });
    it(`other column names are E_CORRUPT naming the table, not an internal error (SCRIPTORIUM_NO_EXTENSION=${noExtension})`, () => {
      const into = path.join(dir, `names-${noExtension}.db`);
      const r = cli(['import', ndjsonWith('CREATE TABLE t(x INTEGER, y TEXT)'), '--into', into], { env });
      expectRefused(r, into);
    });
  }
  it('the same holds for a json export', () => {
    const file = path.join(dir, 'edited.json');
    fs.writeFileSync(file, json.replace('"sql":"CREATE TABLE t(a INTEGER, b TEXT)"', '"sql":"CREATE TABLE t(a INTEGER, b TEXT, c DEFAULT (randomblob(1000)))"'));
    expect(fs.readFileSync(file, 'utf8')).not.toBe(json);
    const into = path.join(dir, 'json.db');
    expectRefused(cli(['import', file, '--into', into]), into);
  });
  it('an untouched export still imports', () => {
    const into = path.join(dir, 'plain.db');
    const r = cli(['import', path.join(dir, 'src.ndjson'), '--into', into, '-q']);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('prune when a snapshot cannot be listed', () => {
  /** A repository with one snapshot of src.db, whose packs are all in use. */
  function repository(name: string): { repo: string; packs: () => string[] } {
    const repo = path.join(dir, name);
    for (const args of [['init', repo], ['backup', path.join(dir, 'src.db'), '-r', repo, '-q']]) {
      const r = cli(args);
      expect(r.code, r.stderr).toBe(0);
    }
    const packs = (): string[] => fs.readdirSync(path.join(repo, 'packs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
    expect(packs().length).toBeGreaterThan(0);
    return { repo, packs };
  }

  it('a snapshots folder that is a link to the real one elsewhere: prune deletes nothing (it deleted every pack)', () => {
    const { repo, packs } = repository('linked-folder');
    const moved = path.join(dir, 'snapshots-elsewhere');
    fs.renameSync(path.join(repo, 'snapshots'), moved);
    fs.symlinkSync(moved, path.join(repo, 'snapshots'));
    const before = packs();
    const r = cli(['prune', '-r', repo]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/^scriptorium: error E_CORRUPT: prune: snapshots is not a regular folder/m);
    expect(packs()).toEqual(before);
    expect(fs.readdirSync(moved)).toHaveLength(1);
  });

  it('a snapshot file that is a link: prune and forget --prune delete nothing', () => {
    const { repo, packs } = repository('linked-snapshot');
    const [id] = fs.readdirSync(path.join(repo, 'snapshots'));
    const at = path.join(repo, 'snapshots', id!);
    fs.renameSync(at, path.join(dir, 'snapshot-elsewhere'));
    fs.symlinkSync(path.join(dir, 'snapshot-elsewhere'), at);
    const before = packs();
    for (const args of [['prune', '-r', repo], ['forget', '--keep-last', '1', '--prune', '-r', repo]]) {
      const r = cli(args);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/^scriptorium: error E_CORRUPT: prune: snapshots\/[0-9a-f]{64} is not a regular file/m);
      expect(packs()).toEqual(before);
    }
  });
});
