/**
 * Outputs are safe (issue 13): what `export -o`, `import --into` and `restore --into` may write, with
 * which mode and owner, what happens to their temporaries when the process is interrupted or killed,
 * and a full disk. Through the real CLI (dist/cli/main.js) under umask 022, on real files, FIFOs,
 * sockets, devices, links and a small tmpfs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X25519Identity } from '../src/codecs/age-keys.js';
import { HOST_TAG, TEMP_NAME, tempStem } from '../src/core/atomic-file.js';
import { exportTo } from '../src/export.js';
import { HistoryStore } from '../src/monitor/index.js';
import { CLI, makeDb, removeDir, tempDir, withDb } from './export-import/helpers.js';
import { makeRecord } from './monitor/helpers.js';

const ENV = { ...process.env, NO_COLOR: '1' };
/** Runs every CLI call under umask 022 (the usual default), so that 0600 cannot come from the umask. */
const UMASK_SH = ['-c', 'umask 022 && exec "$@"', 'sh', process.execPath, CLI];

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let cwd: string;
/** A small database, and a repository with one snapshot of it. */
let small: string;
let repo: string;
/** A database big enough that exporting, importing or restoring it takes a while (about 25 MB). */
let big: string;
let bigExport: string;

function run(args: string[], opts: { cwd?: string; stdio?: (number | 'pipe' | 'ignore')[] } = {}): Result {
  const r = spawnSync('/bin/sh', [...UMASK_SH, ...args], { cwd: opts.cwd ?? cwd, env: ENV, maxBuffer: 64 << 20, stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout?.toString('utf8') ?? '', stderr: r.stderr?.toString('utf8') ?? '' };
}

function start(args: string[]): { child: ChildProcess; done: Promise<Result> } {
  const child = spawn('/bin/sh', [...UMASK_SH, ...args], { cwd, env: ENV, stdio: ['pipe', 'pipe', 'pipe'] }); // sh execs node: same pid
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  child.stdin!.on('error', () => undefined); // EPIPE once it is gone
  const done = new Promise<Result>((resolve) =>
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? -1 : null), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') })),
  );
  return { child, done };
}

/** The CLI failed the documented way: exit ≠ 0, `error CODE: message`, a hint, no stack trace. */
function expectFailure(r: Result, code: string, message?: RegExp): void {
  expect(r.code, r.stderr).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stderr).toMatch(new RegExp(`^scriptorium: error ${code}: \\S.*$`, 'm'));
  expect(r.stderr).toMatch(/^ {2}hint: \S.*$/m);
  expect(r.stderr).not.toMatch(/^\s+at .+[:(]\d+:\d+\)?$/m);
  expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL/);
  if (message) expect(r.stderr).toMatch(message);
}

const sha = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
/** Our temporaries (and their SQLite side files) in `d`. */
const temps = (d: string): string[] => fs.readdirSync(d).filter((n) => TEMP_NAME.test(n));
const mode = (file: string): number => fs.statSync(file).mode & 0o7777;
const fresh = (tag: string): string => fs.mkdtempSync(path.join(dir, `${tag}-`));
const restoreArgs = (into: string, ...more: string[]): string[] => ['restore', 'latest', '--repo', repo, '--into', into, ...more];
const importArgs = (into: string, ...more: string[]): string[] => ['import', bigExport, '--into', into, ...more];

/** A pid that is surely not alive: a process that has already exited. */
function deadPid(): number {
  const r = spawnSync('/bin/true');
  expect(r.pid).toBeGreaterThan(0);
  return r.pid!;
}

beforeAll(() => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  dir = tempDir('outputs');
  cwd = fs.mkdtempSync(path.join(dir, 'cwd-'));
  small = makeDb(path.join(dir, 'small.db'), (db) => db.exec("CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 'one'), (2, 'two')"));
  big = makeDb(path.join(dir, 'big.db'), (db) =>
    db.exec('CREATE TABLE t(a INTEGER PRIMARY KEY, b); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000) INSERT INTO t SELECT i, randomblob(100) FROM c'),
  );
  bigExport = path.join(dir, 'big.ndjson');
  const e = run(['export', big, '--format', 'ndjson', '-o', bigExport, '--quiet']);
  expect(e.code, e.stderr).toBe(0);
  repo = path.join(dir, 'repo');
  for (const args of [['init', repo, '--quiet'], ['backup', big, '--repo', repo, '--quiet']]) {
    const r = run(args);
    expect(r.code, r.stderr).toBe(0);
  }
}, 180_000);
afterAll(() => removeDir(dir));

describe('export -o', () => {
  it('refuses an existing file without --force (E_TARGET_EXISTS with a hint) and replaces it with --force', async () => {
    const d = fresh('exists');
    const out = path.join(d, 'out.sql');
    fs.writeFileSync(out, 'keep me');
    const r = run(['export', small, '--format', 'sql', '-o', out]);
    expectFailure(r, 'E_TARGET_EXISTS', /already exists/);
    expect(r.stderr).toMatch(/--force/);
    expect(fs.readFileSync(out, 'utf8')).toBe('keep me');
    await expect(exportTo(small, { format: 'sql', output: out })).rejects.toMatchObject({ code: 'E_TARGET_EXISTS' });
    expect(fs.readFileSync(out, 'utf8')).toBe('keep me');

    const forced = run(['export', small, '--format', 'sql', '-o', out, '--force', '--quiet']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toMatch(/INSERT INTO/);
    const lib = await exportTo(small, { format: 'ndjson', output: out, force: true });
    expect(lib.path).toBe(out);
    expect(fs.readFileSync(out, 'utf8')).toMatch(/^\{"format":"scriptorium-ndjson"/);
    expect(temps(d)).toEqual([]);
  });

  it('refuses its own source through any link, and its -wal and -shm, even with --force', () => {
    const d = fresh('self');
    const db = path.join(d, 'app.db');
    fs.copyFileSync(small, db);
    fs.linkSync(db, path.join(d, 'hard.db'));
    fs.symlinkSync('app.db', path.join(d, 'soft.db'));
    fs.mkdirSync(path.join(d, 'x'));
    const before = sha(db);
    for (const output of [db, path.join(d, 'hard.db'), path.join(d, 'soft.db'), './x/../app.db', 'x/../hard.db']) {
      for (const force of [[], ['--force']]) {
        const r = run(['export', db, '--format', 'sql', '-o', output, ...force], { cwd: d });
        expectFailure(r, 'E_USAGE', /is the database being exported/);
      }
    }
    // /proc/self/fd/3: the exporting process's own descriptor for the database.
    const fd = fs.openSync(db, 'r');
    try {
      const r = run(['export', db, '--format', 'sql', '-o', '/proc/self/fd/3', '--force'], { stdio: ['ignore', 'pipe', 'pipe', fd] });
      expectFailure(r, 'E_USAGE', /is the database being exported/);
    } finally {
      fs.closeSync(fd);
    }
    expect(sha(db)).toBe(before);

    // A WAL database with an open writer: its -wal and -shm exist and are not the output either.
    const writer = new Database(db);
    try {
      writer.pragma('journal_mode = WAL');
      writer.exec("INSERT INTO t VALUES (3, 'three')");
      for (const side of ['-wal', '-shm']) {
        const file = `${db}${side}`;
        expect(fs.existsSync(file)).toBe(true);
        const was = sha(file);
        const r = run(['export', db, '--format', 'sql', '-o', file, '--force'], { cwd: d });
        expectFailure(r, 'E_USAGE', new RegExp(`the ${side.slice(1)} file of the database being exported`));
        expect(sha(file)).toBe(was);
      }
      expect(writer.prepare('SELECT count(*) FROM t').pluck().get()).toBe(3);
    } finally {
      writer.close();
    }
    expect(temps(d)).toEqual([]);
  });

  it('refuses a device, a FIFO, a directory and a symlink as output, even with --force', () => {
    const d = fresh('kinds');
    fs.mkdirSync(path.join(d, 'folder'));
    spawnSync('mkfifo', [path.join(d, 'fifo')]);
    fs.writeFileSync(path.join(d, 'real.sql'), 'keep');
    fs.symlinkSync('real.sql', path.join(d, 'link.sql'));
    for (const [output, kind] of [['/dev/null', 'character device'], ["fifo", "FIFO \\(named pipe\\)"], ['folder', 'directory'], ['link.sql', 'symbolic link to a regular file']] as const) {
      const r = run(['export', small, '--format', 'sql', '-o', output, '--force'], { cwd: d });
      expectFailure(r, 'E_TARGET_EXISTS', new RegExp(`is a ${kind}`));
    }
    expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(fs.lstatSync(path.join(d, 'fifo')).isFIFO()).toBe(true);
    expect(fs.lstatSync(path.join(d, 'link.sql')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(d, 'real.sql'), 'utf8')).toBe('keep');
    expect(temps(d)).toEqual([]);
  });

  it('the default output path never clashes with an existing export', () => {
    const d = fresh('default');
    fs.mkdirSync(path.join(d, 'backups'));
    // Occupy the names of this second and the next few, as an earlier export in the same second would.
    const now = Date.now();
    const taken: string[] = [];
    for (let s = 0; s < 5; s++) {
      const stamp = new Date(now + s * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
      const name = path.join(d, 'backups', `small-${stamp}.sql`);
      fs.writeFileSync(name, `earlier ${s}`);
      taken.push(name);
    }
    const r = run(['export', small, '--format', 'sql'], { cwd: d });
    expect(r.code, r.stderr).toBe(0);
    const written = path.resolve(d, r.stdout.split('\n')[0]!);
    expect(taken).not.toContain(written);
    expect(path.basename(written)).toMatch(/^small-\d{8}-\d{6}Z-\d+\.sql$/);
    expect(fs.readFileSync(written, 'utf8')).toMatch(/INSERT INTO/);
    taken.forEach((name, s) => expect(fs.readFileSync(name, 'utf8')).toBe(`earlier ${s}`));
  });

  it('an export that fails before writing (not a database) leaves no ./backups/ folder behind', () => {
    const d = fresh('no-folder');
    fs.writeFileSync(path.join(d, 'junk.db'), 'not a database');
    expectFailure(run(['export', 'junk.db', '--format', 'sql'], { cwd: d }), 'E_NOT_SQLITE');
    expectFailure(run(['export', 'junk.db', '--format', 'sql', '-o', 'new/x.sql'], { cwd: d }), 'E_NOT_SQLITE');
    expect(fs.readdirSync(d)).toEqual(['junk.db']);
  });

  it('-o - still writes to standard output', () => {
    const r = run(['export', small, '--format', 'ndjson', '-o', '-', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\{"format":"scriptorium-ndjson"/);
  });
});

describe('import and restore targets', () => {
  const ops = [
    { name: 'import', args: (into: string, ...more: string[]) => ['import', bigExport, '--into', into, ...more] },
    { name: 'restore', args: restoreArgs },
  ];

  for (const op of ops) {
    it(`${op.name}: a device, a FIFO, a socket or a directory is refused even with --force, and stays what it was`, async () => {
      const d = fresh(`${op.name}-kinds`);
      spawnSync('mkfifo', [path.join(d, 'fifo')]);
      fs.mkdirSync(path.join(d, 'folder'));
      const sock = path.join(d, 'sock');
      const server = net.createServer();
      await new Promise<void>((resolve) => server.listen(sock, resolve));
      try {
        for (const [target, kind] of [['/dev/null', 'character device'], [path.join(d, "fifo"), "FIFO \\(named pipe\\)"], [sock, 'socket'], [path.join(d, 'folder'), 'directory']] as const) {
          const r = run(op.args(target, '--force'));
          expectFailure(r, 'E_TARGET_EXISTS', new RegExp(`is a ${kind}, not a regular file`));
        }
        expect(fs.statSync('/dev/null').isCharacterDevice()).toBe(true);
        expect(fs.lstatSync(path.join(d, 'fifo')).isFIFO()).toBe(true);
        expect(fs.lstatSync(sock).isSocket()).toBe(true);
        expect(fs.readdirSync(path.join(d, 'folder'))).toEqual([]);
      } finally {
        server.close();
      }
      expect(temps(d)).toEqual([]);
    });

    it(`${op.name}: a symlink target is refused even with --force (to a database, to a FIFO, dangling), the file it names untouched`, () => {
      const d = fresh(`${op.name}-links`);
      const real = path.join(d, 'real.db');
      fs.copyFileSync(small, real);
      const before = sha(real);
      spawnSync('mkfifo', [path.join(d, 'fifo')]);
      fs.symlinkSync('real.db', path.join(d, 'to-db'));
      fs.symlinkSync('fifo', path.join(d, 'to-fifo'));
      fs.symlinkSync('nowhere.db', path.join(d, 'dangling'));
      for (const [link, what] of [['to-db', 'a symbolic link to a regular file'], ['to-fifo', 'a symbolic link to a FIFO'], ['dangling', 'a dangling symbolic link']] as const) {
        const r = run(op.args(path.join(d, link), '--force'));
        expectFailure(r, 'E_TARGET_EXISTS', new RegExp(`is ${what}`));
        expect(fs.lstatSync(path.join(d, link)).isSymbolicLink()).toBe(true);
      }
      expect(sha(real)).toBe(before);
      expect(fs.existsSync(path.join(d, 'nowhere.db'))).toBe(false);
      expect(temps(d)).toEqual([]);
    });

    it(`${op.name}: a link in the parent path is followed once: the database lands in the directory it leads to, the link stays a link`, () => {
      const d = fresh(`${op.name}-parent-link`);
      const real = path.join(d, 'real');
      fs.mkdirSync(real);
      fs.symlinkSync('real', path.join(d, 'via'));
      const r = run(op.args(path.join(d, 'via', 'app.db'), '--quiet'));
      expect(r.code, r.stderr).toBe(0);
      expect(fs.lstatSync(path.join(d, 'via')).isSymbolicLink()).toBe(true);
      expect(fs.readdirSync(real)).toEqual(['app.db']);
      expect(fs.lstatSync(path.join(real, 'app.db')).isFile()).toBe(true);
      expect(withDb(path.join(real, 'app.db'), (db) => Number((db.prepare('SELECT count(*) AS n FROM t').get() as { n: unknown }).n))).toBe(200_000);
      expect(fs.readdirSync(d).sort()).toEqual(['real', 'via']);
    });

    it(`${op.name}: a parent directory swapped for a link while it runs: E_TARGET_CHANGED, nothing written where the link points`, async () => {
      const d = fresh(`${op.name}-parent-swap`);
      const sub = path.join(d, 'sub');
      const elsewhere = path.join(d, 'elsewhere');
      fs.mkdirSync(sub);
      fs.mkdirSync(elsewhere);
      fs.writeFileSync(path.join(elsewhere, 'app.db'), 'not yours'); // what a redirected rename would replace
      const { done } = start(op.args(path.join(sub, 'app.db'), '--force', '--quiet'));
      // Once the temporary exists (the directory was checked and is in use), the directory is moved
      // away and a link to another one takes its name.
      let swapped = false;
      const finished = done.then((r) => ({ ...r, swapped }));
      for (let i = 0; i < 20_000 && !swapped; i++) {
        if (temps(sub).length > 0) {
          fs.renameSync(sub, path.join(d, 'moved'));
          fs.symlinkSync('elsewhere', sub);
          swapped = true;
        } else await new Promise((r) => setTimeout(r, 1));
      }
      const r = await finished;
      expect(swapped, 'the temporary never appeared').toBe(true);
      expectFailure(r, 'E_TARGET_CHANGED', /was moved or replaced/);
      expect(fs.readdirSync(elsewhere)).toEqual(['app.db']);
      expect(fs.readFileSync(path.join(elsewhere, 'app.db'), 'utf8')).toBe('not yours');
      expect(fs.readdirSync(path.join(d, 'moved')).filter((n) => !TEMP_NAME.test(n))).toEqual([]); // no app.db in the moved one either
    });

    it(`${op.name}: a missing parent directory is E_NOT_FOUND naming it, before any work`, () => {
      const d = fresh(`${op.name}-noparent`);
      const r = run(op.args(path.join(d, 'missing', 'deeper', 'app.db')));
      expectFailure(r, 'E_NOT_FOUND', new RegExp(`the directory ${path.join(d, 'missing', 'deeper').replace(/[/.]/g, '\\$&')} does not exist`));
      expect(fs.readdirSync(d)).toEqual([]);
    });
  }

  it('a parent that is a file is E_NOT_FOUND for export, import and restore', () => {
    const d = fresh('parent-file');
    const file = path.join(d, 'plain');
    fs.writeFileSync(file, 'a file');
    for (const args of [
      ['export', small, '--format', 'sql', '-o', path.join(file, 'x.sql')],
      ['export', small, '--format', 'sql', '-o', path.join(file, 'deeper', 'x.sql')],
      ['import', bigExport, '--into', path.join(file, 'x.db')],
      restoreArgs(path.join(file, 'x.db')),
    ]) {
      expectFailure(run(args), 'E_NOT_FOUND', /is not a directory/);
    }
    expect(fs.readdirSync(d)).toEqual(['plain']);
  });

  it('restore: a target inside the repository is refused, even with --force, and the repository still verifies', () => {
    const config = path.join(repo, 'config');
    const before = sha(config);
    for (const into of [config, path.join(repo, 'restored.db'), path.join(repo, 'snapshots', 'x.db')]) {
      expectFailure(run(restoreArgs(into, '--force')), 'E_USAGE', /is inside the repository/);
    }
    expect(sha(config)).toBe(before);
    expect(fs.existsSync(path.join(repo, 'restored.db'))).toBe(false);
    const v = run(['verify', '--repo', repo, '--quiet']);
    expect(v.code, v.stderr).toBe(0);
  });

  it('import: the file being imported is not its own target, even with --force', () => {
    const d = fresh('import-self');
    const file = path.join(d, 'data.ndjson');
    fs.copyFileSync(bigExport, file);
    const r = run(['import', file, '--into', file, '--force']);
    expectFailure(r, 'E_USAGE', /is the file being imported/);
    expect(sha(file)).toBe(sha(bigExport));
  });
});

describe('private files', () => {
  it('exports (plain, gzip, zstd), new imported and restored databases are 0600 under umask 022', () => {
    const d = fresh('private');
    for (const [name, extra] of [['plain.sql', []], ['gz.sql.gz', ['--compress', 'gzip']], ['zst.sql.zst', ['--compress', 'zstd']]] as const) {
      const r = run(['export', small, '--format', 'sql', '-o', path.join(d, name), '--quiet', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      expect(mode(path.join(d, name)).toString(8), name).toBe('600');
    }
    const imported = path.join(d, 'imported.db');
    const i = run(['import', path.join(d, 'plain.sql'), '--into', imported, '--quiet']);
    expect(i.code, i.stderr).toBe(0);
    expect(mode(imported).toString(8)).toBe('600');
    const restored = path.join(d, 'restored.db');
    const r = run(restoreArgs(restored, '--quiet'));
    expect(r.code, r.stderr).toBe(0);
    expect(mode(restored).toString(8)).toBe('600');
  });

  it('the history file written by the CLI is 0600 under umask 022', () => {
    const d = fresh('history');
    const r = run(['export', small, '--format', 'sql', '-o', path.join(d, 'x.sql'), '--quiet'], { cwd: d });
    expect(r.code, r.stderr).toBe(0);
    const history = path.join(d, 'backups', '.scriptorium-history.jsonl');
    expect(fs.existsSync(history)).toBe(true);
    expect(mode(history).toString(8)).toBe('600');
  });

  it('the history and its archive stay 0600 through a compaction, whatever the umask', async () => {
    const d = fresh('archive');
    const old = process.umask(0o022);
    try {
      const store = new HistoryStore({ path: path.join(d, 'h.jsonl'), maxEntries: 3 });
      for (let n = 0; n < 8; n++) store.append(makeRecord({ kind: 'export' }));
      store.compact();
      expect((await store.readArchive()).length).toBeGreaterThan(0);
      expect(mode(store.path).toString(8)).toBe('600');
      expect(mode(store.archivePath).toString(8)).toBe('600');
    } finally {
      process.umask(old);
    }
  });

  const root = process.getuid?.() === 0; // giving a file to uid 1234 takes root
  for (const op of ['import', 'restore'] as const) {
    it.skipIf(!root)(`${op} --force over an existing database keeps its mode (0640), owner and group (1234:1234)`, () => {
      const d = fresh(`${op}-owner`);
      const target = path.join(d, 'app.db');
      fs.copyFileSync(small, target);
      fs.chownSync(target, 1234, 1234);
      fs.chmodSync(target, 0o640);
      const r = run(op === 'import' ? importArgs(target, '--force', '--quiet') : restoreArgs(target, '--force', '--quiet'));
      expect(r.code, r.stderr).toBe(0);
      const st = fs.statSync(target);
      expect((st.mode & 0o7777).toString(8)).toBe('640');
      expect([st.uid, st.gid]).toEqual([1234, 1234]);
      expect(withDb(target, (db) => db.prepare('SELECT count(*) FROM t').pluck().get())).toBe(200_000n); // really replaced
      expect(temps(d)).toEqual([]);
    });
  }

  it.skipIf(!root)('export --force over an existing file keeps its mode, owner and group', () => {
    const d = fresh('export-owner');
    const out = path.join(d, 'out.sql');
    fs.writeFileSync(out, 'old');
    fs.chownSync(out, 1234, 1234);
    fs.chmodSync(out, 0o640);
    const r = run(['export', small, '--format', 'sql', '-o', out, '--force', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const st = fs.statSync(out);
    expect([(st.mode & 0o7777).toString(8), st.uid, st.gid]).toEqual(['640', 1234, 1234]);
  });
});

/** Polls until a temporary appears in `d`, then stops the child there (SIGSTOP), so that the signal finds it mid-work. */
async function stopMidWork(child: ChildProcess, d: string, done: Promise<Result>): Promise<string[]> {
  let exited = false;
  void done.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error('the operation finished before it could be interrupted');
    if (temps(d).length > 0) {
      child.kill('SIGSTOP');
      const seen = temps(d);
      if (seen.length > 0) return seen;
      child.kill('SIGCONT');
    }
    await tick();
  }
}

describe('temporaries', () => {
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    it(`${signal} during an import removes its temporary database (exit ${code})`, async () => {
      const d = fresh(`import-${signal}`);
      const into = path.join(d, 'app.db');
      const { child, done } = start(['import', '-', '--into', into]);
      const data = fs.readFileSync(bigExport);
      child.stdin!.write(data.subarray(0, data.length >> 1)); // half the file, and the rest never comes
      const seen = await stopMidWork(child, d, done);
      expect(seen.some((n) => n.startsWith(`.app.db.import-${child.pid}-h${HOST_TAG}-`)), seen.join()).toBe(true);
      child.kill(signal);
      child.kill('SIGCONT');
      const r = await done;
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(new RegExp(`interrupted by ${signal}; removed the temporary file`));
      expect(fs.readdirSync(d)).toEqual([]);
    });
  }

  for (const op of ['export', 'restore'] as const) {
    it(`SIGTERM during ${op === 'export' ? 'an export' : 'a restore'} removes its temporary file (exit 143), an existing target untouched`, async () => {
      const d = fresh(`${op}-sigterm`);
      const target = path.join(d, op === 'export' ? 'out.ndjson' : 'app.db');
      fs.copyFileSync(small, target);
      const before = sha(target);
      const { child, done } = start(op === 'export' ? ['export', big, '--format', 'ndjson', '-o', target, '--force'] : restoreArgs(target, '--force'));
      await stopMidWork(child, d, done);
      child.kill('SIGTERM');
      child.kill('SIGCONT');
      const r = await done;
      expect(r.code, r.stderr).toBe(143);
      expect(fs.readdirSync(d)).toEqual([path.basename(target)]);
      expect(sha(target)).toBe(before);
    });
  }

  it('a temporary left by a SIGKILLed import is removed by the next import onto the target, which says so', async () => {
    const d = fresh('sigkill');
    const into = path.join(d, 'app.db');
    const { child, done } = start(['import', '-', '--into', into]);
    const data = fs.readFileSync(bigExport);
    child.stdin!.write(data.subarray(0, data.length >> 1));
    const left = await stopMidWork(child, d, done);
    child.kill('SIGKILL');
    await done;
    expect(temps(d), 'SIGKILL leaves the temporary').toEqual(left);

    // Also beside the target: one of a live process (this one), one of another host; both stay.
    const live = `.app.db.import-${process.pid}-h${HOST_TAG}-0000aaaa`;
    const otherHost = `.app.db.import-${deadPid()}-h${HOST_TAG === '00000000' ? '11111111' : '00000000'}-0000bbbb`;
    for (const name of [live, otherHost]) fs.writeFileSync(path.join(d, name), 'not ours to remove');

    const r = run(['import', bigExport, '--into', into]);
    expect(r.code, r.stderr).toBe(0);
    const main = left.find((n) => !/-(journal|wal|shm)$/.test(n))!;
    expect(r.stderr).toContain(`scriptorium: import: removed a temporary file left by process ${child.pid}: ${path.join(d, main)}`);
    expect(fs.readdirSync(d).sort()).toEqual([live, otherHost, 'app.db'].sort());
  });

  it('the library reports a removed stale temporary as a notice event, and leaves a legacy name (no host) alone', async () => {
    const d = fresh('notice');
    const out = path.join(d, 'out.ndjson');
    const pid = deadPid();
    const stale = path.join(d, `.out.ndjson.tmp-${pid}-h${HOST_TAG}-00c0ffee`);
    const legacy = path.join(d, `.out.ndjson.tmp-${pid}-00c0ffee`); // before hosts were named: whose it is is unknown
    for (const f of [stale, legacy]) fs.writeFileSync(f, 'partial');
    const events: { type: string; message?: string; path?: string }[] = [];
    await exportTo(small, { format: 'ndjson', output: out, onEvent: (e) => events.push(e) });
    const notices = events.filter((e) => e.type === 'notice');
    expect(notices).toEqual([expect.objectContaining({ message: `export: removed a temporary file left by process ${pid}: ${stale}`, path: stale })]);
    expect(fs.readdirSync(d).sort()).toEqual([path.basename(legacy), 'out.ndjson'].sort());
  });

  it('a 240-character target name: export and import work, and a stale temporary of that name is swept', () => {
    const d = fresh('long');
    // With the ~40 characters a temporary adds, these names would pass the 255-byte limit of a name.
    const out = path.join(d, `${'x'.repeat(236)}.sql`);
    const pid = deadPid();
    const stale = path.join(d, `.${tempStem(path.basename(out))}.tmp-${pid}-h${HOST_TAG}-0badf00d`);
    fs.writeFileSync(stale, 'partial');
    const e = run(['export', small, '--format', 'sql', '-o', out]);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stderr).toContain(`removed a temporary file left by process ${pid}: ${stale}`);
    const into = path.join(d, `${'y'.repeat(237)}.db`);
    const i = run(['import', out, '--into', into, '--quiet']);
    expect(i.code, i.stderr).toBe(0);
    expect(fs.readdirSync(d).sort()).toEqual([path.basename(out), path.basename(into)].sort());
  });

  for (const op of ['export', 'restore'] as const) {
    it(`${op}: a stale temporary of a dead process beside the target is removed and reported`, () => {
      const d = fresh(`${op}-stale`);
      const target = path.join(d, op === 'export' ? 'out.sql' : 'app.db');
      const pid = deadPid();
      const stale = path.join(d, `.${path.basename(target)}.${op === 'export' ? 'tmp' : 'restore'}-${pid}-h${HOST_TAG}-1234abcd`);
      fs.writeFileSync(stale, 'half a file');
      const r = run(op === 'export' ? ['export', small, '--format', 'sql', '-o', target] : restoreArgs(target));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`removed a temporary file left by process ${pid}: ${stale}`);
      expect(fs.readdirSync(d)).toEqual([path.basename(target)]);
    });
  }
});

/** Mounts a 4 MiB tmpfs (as root); the reason instead when that is not permitted here. */
function smallTmpfs(): { dir: string } | { skip: string } {
  const parent = tempDir('tmpfs');
  const mnt = fs.mkdtempSync(path.join(parent, 'mnt-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt]);
  if (r.status === 0) return { dir: mnt };
  removeDir(parent);
  return { skip: `cannot mount a tmpfs here (${r.stderr?.toString().trim() || `exit ${r.status}`}): full-disk test skipped` };
}

describe('full disk', () => {
  // Mounted in beforeAll, not while collecting: a run that filters these tests out mounts nothing.
  let mnt = '';
  let skip = '';
  beforeAll(() => {
    const m = smallTmpfs();
    if ('dir' in m) mnt = m.dir;
    else skip = m.skip;
  });
  afterAll(() => {
    if (!mnt) return;
    spawnSync('umount', [mnt]);
    removeDir(path.dirname(mnt));
  });
  /** Skips the running test, saying why, when there is no tmpfs. */
  const needTmpfs = (ctx: { skip: (note?: string) => void }): void => {
    if (!mnt) {
      console.warn(skip);
      ctx.skip(skip);
    }
  };

  /** An existing target on the full disk and the space taken: both must be as they were afterwards. */
  function existingOnDisk(name: string, from: string): { file: string; sha: string } {
    for (const n of fs.readdirSync(mnt)) fs.rmSync(path.join(mnt, n), { recursive: true, force: true });
    const file = path.join(mnt, name);
    fs.copyFileSync(from, file);
    return { file, sha: sha(file) };
  }

  // --recipient: an age file whose chunks a worker thread seals and writes (AgeFileWriter); its failure too.
  const recipient = X25519Identity.generate().identity.recipient.toString();
  for (const extra of [[], ['--compress', 'gzip'], ['--compress', 'zstd'], ['--recipient', recipient]]) {
    it(`export ${extra.join(' ').replace(recipient, 'age1…') || 'plain'}: E_NO_SPACE naming the file, no temporary, the existing file untouched`, (ctx) => {
      needTmpfs(ctx);
      const { file, sha: before } = existingOnDisk('out.ndjson', small);
      const r = run(['export', big, '--format', 'ndjson', '-o', file, '--force', ...extra]);
      expectFailure(r, 'E_NO_SPACE', new RegExp(`export: writing ${file.replace(/[/.]/g, '\\$&')}: no space left`));
      expect(sha(file)).toBe(before);
      expect(fs.readdirSync(mnt)).toEqual(['out.ndjson']);
    });
  }

  for (const op of ['import', 'restore'] as const) {
    it(`${op}: E_NO_SPACE naming the target (never E_CORRUPT), no temporary, the existing database untouched`, (ctx) => {
      needTmpfs(ctx);
      const { file, sha: before } = existingOnDisk('app.db', small);
      const r = run(op === 'import' ? importArgs(file, '--force') : restoreArgs(file, '--force'));
      expectFailure(r, 'E_NO_SPACE', new RegExp(`${op}: writing ${file.replace(/[/.]/g, '\\$&')}: `));
      expect(r.stderr).not.toMatch(/E_CORRUPT|damaged/);
      expect(sha(file)).toBe(before);
      expect(fs.readdirSync(mnt)).toEqual(['app.db']);
    });
  }

  it('import of a sql file onto a full disk is E_NO_SPACE, not "something other than literal values"', (ctx) => {
    needTmpfs(ctx);
    const sql = path.join(dir, 'big.sql');
    if (!fs.existsSync(sql)) expect(run(['export', big, '--format', 'sql', '-o', sql, '--quiet']).code).toBe(0);
    existingOnDisk('keep', small);
    const r = run(['import', sql, '--into', path.join(mnt, 'new.db')]);
    expectFailure(r, 'E_NO_SPACE');
    expect(r.stderr).not.toMatch(/literal values|E_UNSUPPORTED_SQL/);
    expect(fs.readdirSync(mnt)).toEqual(['keep']);
  });
});

describe('read-only target directory', () => {
  it('export, import and restore into a read-only file system are E_IO naming the target, never an internal error', () => {
    const mnt = fs.mkdtempSync(path.join(dir, 'ro-'));
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mnt]);
    if (m.status !== 0) {
      console.warn(`cannot mount a read-only tmpfs here (${m.stderr?.toString().trim()}): test skipped`);
      return;
    }
    try {
      for (const [args, where] of [
        [['export', small, '--format', 'sql', '-o', path.join(mnt, 'x.sql')], 'export: writing'],
        [['export', small, '--format', 'sql', '--compress', 'zstd', '-o', path.join(mnt, 'x.sql.zst')], 'export: writing'],
        [['import', bigExport, '--into', path.join(mnt, 'x.db')], 'import: writing'],
        [restoreArgs(path.join(mnt, 'x.db')), 'restore: writing'],
      ] as const) {
        const r = run([...args]);
        expectFailure(r, 'E_IO', new RegExp(`${where} ${mnt.replace(/[/.]/g, '\\$&')}/x`));
      }
      expect(fs.readdirSync(mnt)).toEqual([]);
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  });
});
