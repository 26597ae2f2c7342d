/**
 * Encrypted repositories (format version 2): the real CLI in child processes on real files for what a
 * user does (init --encrypt / --recipient, backup, restore, verify, key management), and the library
 * for damaging each kind of object. A wrong key is E_AUTH; a changed, truncated, renamed or swapped
 * object fails to authenticate and nothing is written to a restore target; secrets appear nowhere.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, init, prune, Repository, restore, verify } from '../../src/repository/index.js';
import { RepositoryIntegrityError } from '../../src/repository/errors.js';
import { X25519Identity } from '../../src/codecs/age-keys.js';
import { aheadCounts, passphraseKey } from '../../src/repository/crypto/key-objects.js';
import { deriveKeyAhead, dropKeyAhead } from '../../src/repository/crypto/repository-crypto.js';
import { FsStore } from '../../src/stores/fs-store.js';
import { demoDb, engineDigests, tempDir } from './helpers.js';

const CLI = resolve('dist/cli/main.js');
const LOG_N = '10'; // scrypt work factor for tests (the default is 15)

function cli(cwd: string, args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd, encoding: 'utf8',
    env: { ...process.env, SCRIPTORIUM_PASSWORD: undefined, SCRIPTORIUM_IDENTITY_FILE: undefined, SCRIPTORIUM_REPO: undefined, SCRIPTORIUM_SCRYPT_LOG_N: LOG_N, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

function keys(passphrase: string, identities: X25519Identity[] = []) {
  return { keys: { passphrase: async () => Buffer.from(passphrase), identities, scryptLogN: 10 } };
}

async function encryptedRepo(dir: string, passphrase = 'correct horse', db = demoDb(dir, 300)) {
  const repo = join(dir, 'repo');
  await init(repo, { encryption: { passphrase: Buffer.from(passphrase), scryptLogN: 10 } });
  const snap = await backup(db, repo, keys(passphrase));
  return { repo, db, snap };
}

/** The stored files of one folder of a repository. */
function objects(repo: string, folder: string): string[] {
  return files(join(repo, folder)).sort();
}

function flipBit(file: string, at: number): void {
  const data = fs.readFileSync(file);
  data[at] ^= 0x10;
  fs.writeFileSync(file, data);
}

/** `p` fails with `code`, itself or (restore and verify collect problems) as one of its problems. */
async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = (await p.then(() => undefined, (e: unknown) => e)) as { code?: string; problems?: Array<{ code: string }> } | undefined;
  expect(err, 'it should have failed').toBeDefined();
  const codes = [err!.code, ...(err!.problems ?? []).map((q) => q.code)];
  expect(codes).toContain(code);
}

// Each test runs the CLI a dozen times or more: on a loaded machine that takes more than the default minute.
describe('encrypted repositories through the CLI', { timeout: 180_000 }, () => {
  it('init --encrypt, backup, restore, verify; the passphrase and the rows appear in no file, output or history', async () => {
    const dir = tempDir('crypt-cli');
    const db = demoDb(dir, 400);
    const secret = `pass-${Date.now().toString(36)}-Zq9`;
    const env = { SCRIPTORIUM_PASSWORD: secret };
    const outputs: string[] = [];
    const run = (args: string[], e: Record<string, string | undefined> = env) => {
      const r = cli(dir, args, e);
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    expect(run(['init', '--encrypt', 'repo', '--json']).code).toBe(0);
    const config = JSON.parse(fs.readFileSync(join(dir, 'repo', 'config'), 'utf8'));
    expect(config).toMatchObject({ version: 2, encryption: { mode: 'passphrase', cipher: 'aes-256-gcm' } });
    const b = run(['backup', '--repo', 'repo', db, '--json']);
    expect(b.code, b.stderr).toBe(0);
    expect(run(['snapshots', '--repo', 'repo']).stdout).toMatch(/1 snapshot/);
    const r = run(['restore', 'latest', '--repo', 'repo', '--into', 'out.db', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(run(['verify', '--read-data', '--repo', 'repo', '--json']).code).toBe(0);
    // The same through --password-file.
    fs.writeFileSync(join(dir, 'pw'), `${secret}\n`);
    expect(run(['verify', '--repo', 'repo', '--password-file', 'pw'], {}).code).toBe(0);
    // A passphrase is never an argument: there is no such flag.
    const flag = run(['backup', '--repo', 'repo', db, '--password', secret], {});
    expect(flag.code).not.toBe(0);
    expect(flag.stderr).toMatch(/unknown option/);
    outputs.pop();
    outputs.pop(); // (that output names the secret only because this test put it in the arguments)

    // Nowhere: not in the repository (nor any row text), the history, the outputs.
    // A visitor's national ID number and phone number, read with the real sqlite3 shell.
    const row = String(spawnSync('sqlite3', [db, "SELECT id || '|' || phone FROM regs LIMIT 1"], { encoding: 'utf8' }).stdout).trim().split('|');
    expect(row[0]).toMatch(/^\d{13}$/);
    expect(row[1]).toMatch(/^\d{10}$/);
    for (const f of files(join(dir, 'repo'))) {
      const content = fs.readFileSync(f);
      for (const plain of [secret, row[0]!, row[1]!, 'CREATE TABLE', '"regs"']) expect(content.includes(plain), `${plain} in ${f}`).toBe(false);
    }
    // (The same checks find them in an unencrypted repository: they are a real test.)
    expect(cli(dir, ['init', 'plain']).code).toBe(0);
    expect(cli(dir, ['backup', '--repo', 'plain', db]).code).toBe(0);
    const manifest = files(join(dir, 'plain', 'snapshots'))[0]!;
    const { decompressBounded } = await import('../../src/repository/object-file.js');
    const body = await decompressBounded(fs.readFileSync(manifest).subarray(9), fs.readFileSync(manifest)[8]!, 'manifest', 64 << 20);
    expect(body.includes('CREATE TABLE')).toBe(true);
    const history = files(dir).filter((f) => f.endsWith('.jsonl'));
    expect(history.length).toBeGreaterThan(0);
    for (const f of history) expect(fs.readFileSync(f, 'utf8')).not.toContain(secret);
    for (const o of outputs) expect(o).not.toContain(secret);
  });

  it('a wrong or missing passphrase is E_AUTH and writes nothing; backup refuses an unencrypted repository when a passphrase is given', () => {
    const dir = tempDir('crypt-auth');
    const db = demoDb(dir, 200);
    expect(cli(dir, ['init', '--encrypt', 'repo'], { SCRIPTORIUM_PASSWORD: 'right' }).code).toBe(0);
    expect(cli(dir, ['backup', '--repo', 'repo', db], { SCRIPTORIUM_PASSWORD: 'right' }).code).toBe(0);
    const wrong = cli(dir, ['restore', 'latest', '--repo', 'repo', '--into', 'out.db'], { SCRIPTORIUM_PASSWORD: 'wrong' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/E_AUTH/);
    expect(wrong.stderr).not.toContain('wrong');
    expect(fs.existsSync(join(dir, 'out.db'))).toBe(false);
    const none = spawnSync('setsid', ['-w', process.execPath, CLI, 'snapshots', '--repo', 'repo'], { cwd: dir, encoding: 'utf8', env: { ...process.env, SCRIPTORIUM_PASSWORD: '' } });
    expect(none.status).not.toBe(0);
    expect(none.stderr).toMatch(/SCRIPTORIUM_PASSWORD/);
    // An unencrypted repository where an encrypted one was expected: no plaintext backup.
    expect(cli(dir, ['init', 'plain']).code).toBe(0);
    const plain = cli(dir, ['backup', '--repo', 'plain', db], { SCRIPTORIUM_PASSWORD: 'right' });
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/E_AUTH.*not encrypted/);
    expect(fs.existsSync(join(dir, 'plain', 'snapshots')) && fs.readdirSync(join(dir, 'plain', 'snapshots')).length > 0).toBe(false);
    // The encrypted repository's config with its encryption taken out: even without a passphrase, no
    // plaintext goes in beside its key objects.
    const configFile = join(dir, 'repo', 'config');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    delete config.encryption;
    fs.writeFileSync(configFile, JSON.stringify(config));
    const before = fs.readdirSync(join(dir, 'repo', 'snapshots')).sort();
    const stripped = cli(dir, ['backup', '--repo', 'repo', db], { SCRIPTORIUM_PASSWORD: undefined });
    expect(stripped.code).not.toBe(0);
    expect(stripped.stderr).toMatch(/E_CORRUPT: backup: repository .* holds key objects \(keys\/[0-9a-f]+\), but its config says it is not encrypted/);
    expect(fs.readdirSync(join(dir, 'repo', 'snapshots')).sort()).toEqual(before);
  });

  it('key add, list, passwd and remove change passphrases without touching data; the last key and the key in use stay', () => {
    const dir = tempDir('crypt-keys');
    const db = demoDb(dir, 200);
    const A = { SCRIPTORIUM_PASSWORD: 'first passphrase' };
    expect(cli(dir, ['init', '--encrypt', 'repo'], A).code).toBe(0);
    expect(cli(dir, ['backup', '--repo', 'repo', db], A).code).toBe(0);
    const data = () => Object.fromEntries(files(join(dir, 'repo')).filter((f) => !f.includes('/keys/') && !f.includes('/locks/')).map((f) => [f, fs.readFileSync(f, 'hex')]));
    const before = data();
    fs.writeFileSync(join(dir, 'second'), 'second passphrase\n');
    const added = cli(dir, ['key', 'add', '--repo', 'repo', '--new-password-file', 'second', '--json'], A);
    expect(added.code, added.stderr).toBe(0);
    const secondId = JSON.parse(added.stdout).added as string;
    const B = { SCRIPTORIUM_PASSWORD: 'second passphrase' };
    const list = JSON.parse(cli(dir, ['key', 'list', '--repo', 'repo', '--json'], B).stdout).keys as Array<{ id: string; current: boolean }>;
    expect(list).toHaveLength(2);
    expect(list.find((k) => k.current)?.id).toBe(secondId);
    const firstId = list.find((k) => !k.current)!.id;
    expect(cli(dir, ['restore', 'latest', '--repo', 'repo', '--into', 'b.db'], B).code).toBe(0);
    // Not the key in use; then the other one, with the second passphrase.
    expect(cli(dir, ['key', 'remove', secondId, '--repo', 'repo'], B).stderr).toMatch(/E_USAGE.*unlocked with/);
    expect(cli(dir, ['key', 'remove', firstId.slice(0, 6), '--repo', 'repo'], B).code).toBe(0);
    expect(cli(dir, ['snapshots', '--repo', 'repo'], A).stderr).toMatch(/E_AUTH/);
    // The last key cannot be removed (by anyone).
    expect(cli(dir, ['key', 'remove', secondId, '--repo', 'repo'], B).stderr).toMatch(/E_USAGE.*last key/);
    // passwd: the old passphrase stops working, the new one works, one key remains.
    const passwd = cli(dir, ['key', 'passwd', '--repo', 'repo'], { ...B, SCRIPTORIUM_NEW_PASSWORD: 'third passphrase' });
    expect(passwd.code, passwd.stderr).toBe(0);
    expect(cli(dir, ['snapshots', '--repo', 'repo'], B).stderr).toMatch(/E_AUTH/);
    const C = { SCRIPTORIUM_PASSWORD: 'third passphrase' };
    expect(cli(dir, ['verify', '--read-data', '--repo', 'repo'], C).code).toBe(0);
    expect(JSON.parse(cli(dir, ['key', 'list', '--repo', 'repo', '--json'], C).stdout).keys).toHaveLength(1);
    expect(data()).toEqual(before);
    for (const f of files(dir).filter((f) => f.endsWith('.jsonl'))) {
      for (const s of ['first passphrase', 'second passphrase', 'third passphrase']) expect(fs.readFileSync(f, 'utf8')).not.toContain(s);
    }
  });

  it('public-key mode: a host backs up (deduplicated) with its passphrase, but only the identity restores, verifies data or prunes', () => {
    const dir = tempDir('crypt-pub');
    const db = demoDb(dir, 300);
    expect(cli(dir, ['keygen', '-o', 'id.txt']).code).toBe(0);
    const idText = fs.readFileSync(join(dir, 'id.txt'), 'utf8');
    const recipient = /public key: (age1\w+)/.exec(idText)![1]!;
    const secretKey = /^AGE-SECRET-KEY-1\w+$/m.exec(idText)![0];
    const host = { SCRIPTORIUM_PASSWORD: 'host passphrase' };
    const outputs: string[] = [];
    const run = (args: string[], env: Record<string, string | undefined>) => {
      const r = cli(dir, args, env);
      outputs.push(r.stdout, r.stderr);
      return r;
    };
    expect(run(['init', '--recipient', recipient, 'repo'], host).code).toBe(0);
    const first = JSON.parse(run(['backup', '--repo', 'repo', db, '--json'], host).stdout);
    const second = JSON.parse(run(['backup', '--repo', 'repo', db, '--json'], host).stdout);
    expect(first.stats.newChunks).toBeGreaterThan(0);
    expect(second.stats.newChunks).toBe(0); // the host deduplicates against what it cannot read
    // Without the identity: no restore (nothing written), no verify --read-data, no prune, no listing of snapshots.
    for (const args of [['restore', 'latest', '--repo', 'repo', '--into', 'out.db'], ['verify', '--read-data', '--repo', 'repo'], ['prune', '--repo', 'repo'], ['snapshots', '--repo', 'repo']]) {
      const r = run(args, host);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(/E_AUTH.*no identity was given/);
    }
    expect(fs.existsSync(join(dir, 'out.db'))).toBe(false);
    // With it (and no passphrase at all): everything.
    const reader = { SCRIPTORIUM_IDENTITY_FILE: join(dir, 'id.txt') };
    expect(run(['restore', 'latest', '--repo', 'repo', '--into', 'out.db'], reader).code).toBe(0);
    expect(run(['verify', '--read-data', '--repo', 'repo', '--json'], reader).code).toBe(0);
    expect(run(['prune', '--repo', 'repo', '-i', 'id.txt'], {}).code).toBe(0);
    // A wrong identity is E_AUTH.
    expect(cli(dir, ['keygen', '-o', 'other.txt']).code).toBe(0);
    expect(run(['restore', 'latest', '--repo', 'repo', '--into', 'o2.db', '-i', 'other.txt'], {}).stderr).toMatch(/E_AUTH/);
    expect(fs.existsSync(join(dir, 'o2.db'))).toBe(false);
    for (const f of [...files(join(dir, 'repo')), ...files(dir).filter((f) => f.endsWith('.jsonl'))]) {
      const text = fs.readFileSync(f, 'latin1');
      expect(text).not.toContain(secretKey);
      expect(text).not.toContain('host passphrase');
    }
    for (const o of outputs) {
      expect(o).not.toContain(secretKey);
      expect(o).not.toContain('host passphrase');
    }
  });
});

describe('a key derived ahead (the CLI starts the scrypt while it loads its code)', { timeout: 180_000 }, () => {
  it('is taken only by an open of the same key with the same passphrase; any other open derives its own and drops it', async () => {
    const dir = tempDir('crypt-ahead');
    const { repo, db } = await encryptedRepo(dir, 'right one');
    const store = new FsStore(repo);
    const counts = () => ({ ...aheadCounts });
    const before = counts();
    // Another passphrase at the open: the early result opens nothing for it.
    await deriveKeyAhead(store, Buffer.from('right one'));
    await expectCode(restore('latest', repo, { into: join(dir, 'wrong.db'), ...keys('wrong') }), 'E_AUTH');
    expect(fs.existsSync(join(dir, 'wrong.db'))).toBe(false);
    expect(counts()).toEqual({ started: before.started + 1, taken: before.taken });
    // Dropped by that open: the next one, with the right passphrase, derives its own.
    await restore('latest', repo, { into: join(dir, 'right.db'), ...keys('right one') });
    expect(counts().taken).toBe(before.taken);
    // The same key and passphrase: taken.
    await deriveKeyAhead(store, Buffer.from('right one'));
    await restore('latest', repo, { into: join(dir, 'right2.db'), ...keys('right one') });
    expect(counts()).toEqual({ started: before.started + 2, taken: before.taken + 1 });
    expect(await engineDigests(join(dir, 'right2.db'))).toEqual(await engineDigests(db));
    // A wrong passphrase ahead: the open derives its own and works.
    await deriveKeyAhead(store, Buffer.from('wrong'));
    await backup(db, repo, keys('right one'));
    expect(counts().taken).toBe(before.taken + 1);
    // The key changed since (new salt): an early result for the old key is not used for the new one.
    await deriveKeyAhead(store, Buffer.from('right one'));
    expect(cli(dir, ['key', 'passwd', '--repo', 'repo'], { SCRIPTORIUM_PASSWORD: 'right one', SCRIPTORIUM_NEW_PASSWORD: 'right one' }).code).toBe(0);
    await restore('latest', repo, { into: join(dir, 'again.db'), ...keys('right one') });
    expect(counts()).toEqual({ started: before.started + 4, taken: before.taken + 1 });
  });

  it('starts nothing for a key dearer than the default, nor once an open has ended while it read the keys', async () => {
    const dir = tempDir('crypt-ahead-bounds');
    const { repo } = await encryptedRepo(dir, 'pw');
    const before = { ...aheadCounts };
    // A key object asking for 2^16 (as a hostile folder may, even one whose config is not encrypted).
    const dear = await passphraseKey('0'.repeat(64), 'f'.repeat(16), { mode: 'passphrase', meta: Buffer.alloc(32, 1), data: Buffer.alloc(32, 2) }, Buffer.from('pw'), 16);
    const hostile = join(dir, 'hostile');
    fs.mkdirSync(join(hostile, 'keys'), { recursive: true });
    fs.writeFileSync(join(hostile, 'keys', 'f'.repeat(16)), JSON.stringify(dear));
    await deriveKeyAhead(new FsStore(hostile), Buffer.from('pw'));
    expect(aheadCounts.started).toBe(before.started);
    // The keys are still being read when the command's open ends (here: dropped at once).
    const reading = deriveKeyAhead(new FsStore(repo), Buffer.from('pw'));
    dropKeyAhead();
    await reading;
    expect(aheadCounts.started).toBe(before.started);
    // Otherwise it starts.
    await deriveKeyAhead(new FsStore(repo), Buffer.from('pw'));
    expect(aheadCounts.started).toBe(before.started + 1);
    dropKeyAhead();
  });

  it('the CLI still reads a passphrase piped to --password-file /dev/stdin once, at the open', async () => {
    const dir = tempDir('crypt-pipe');
    const db = demoDb(dir, 100);
    expect(cli(dir, ['init', '--encrypt', 'repo'], { SCRIPTORIUM_PASSWORD: 'piped' }).code).toBe(0);
    for (const args of [['backup', '--repo', 'repo', db], ['restore', 'latest', '--repo', 'repo', '--into', 'out.db']]) {
      // A real pipe (node's own stdin pipes are sockets, which /dev/stdin does not open).
      const r = spawnSync('sh', ['-c', 'printf "piped\\n" | "$0" "$@"', process.execPath, CLI, ...args, '--password-file', '/dev/stdin'], {
        cwd: dir, encoding: 'utf8',
        env: { ...process.env, SCRIPTORIUM_PASSWORD: undefined, SCRIPTORIUM_IDENTITY_FILE: undefined, SCRIPTORIUM_REPO: undefined },
      });
      expect(r.status, r.stderr).toBe(0);
    }
    expect(await engineDigests(join(dir, 'out.db'))).toEqual(await engineDigests(db));
  });
});

describe('every encrypted object is authenticated', () => {
  it('a flipped bit in a pack, a manifest or an index file is E_AUTH, and restore writes nothing', async () => {
    const dir = tempDir('crypt-flip');
    const { repo } = await encryptedRepo(dir);
    const into = join(dir, 'out.db');
    for (const folder of ['packs', 'snapshots']) {
      for (const at of ['header', 'middle', 'end'] as const) {
        const file = objects(repo, folder)[0]!;
        const original = fs.readFileSync(file);
        flipBit(file, at === 'header' ? 10 : at === 'middle' ? original.length >> 1 : original.length - 1);
        await expectCode(restore('latest', repo, { into, ...keys('correct horse') }), 'E_AUTH');
        expect(fs.existsSync(into), `${folder} ${at}`).toBe(false);
        expect(fs.readdirSync(dir).filter((f) => f.startsWith('out.db'))).toEqual([]);
        fs.writeFileSync(file, original);
      }
    }
    const index = objects(repo, 'index')[0]!;
    flipBit(index, 40);
    const err = await verify(repo, keys('correct horse')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RepositoryIntegrityError);
    expect((err as RepositoryIntegrityError).problems.map((p) => p.code)).toContain('E_AUTH');
  });

  it('a flipped bit in a key object, or a config pointed at another recipient, never opens', async () => {
    const dir = tempDir('crypt-key');
    const { repo } = await encryptedRepo(dir);
    const keyFile = objects(repo, 'keys')[0]!;
    const original = fs.readFileSync(keyFile, 'utf8');
    const object = JSON.parse(original);
    const sealed = Buffer.from(object.sealed, 'base64');
    sealed[20] ^= 1;
    fs.writeFileSync(keyFile, JSON.stringify({ ...object, sealed: sealed.toString('base64') }));
    await expectCode(Repository.open(repo, keys('correct horse')), 'E_AUTH');
    const salt = Buffer.from(object.scrypt.salt, 'base64');
    salt[0] ^= 1;
    fs.writeFileSync(keyFile, JSON.stringify({ ...object, scrypt: { ...object.scrypt, salt: salt.toString('base64') } }));
    await expectCode(Repository.open(repo, keys('correct horse')), 'E_AUTH');
    fs.writeFileSync(keyFile, original);
    // Public-key mode: the recipient that data is sealed to comes from the authenticated key, not the config.
    const pub = join(dir, 'pub');
    const { identity } = X25519Identity.generate();
    const other = X25519Identity.generate().identity;
    await init(pub, { encryption: { passphrase: Buffer.from('host'), recipient: identity.recipient, scryptLogN: 10 } });
    const config = JSON.parse(fs.readFileSync(join(pub, 'config'), 'utf8'));
    config.encryption.recipient = other.recipient.toString();
    fs.writeFileSync(join(pub, 'config'), JSON.stringify(config));
    await expectCode(Repository.open(pub, keys('host')), 'E_CORRUPT');
  });

  it('a truncated, renamed, swapped, moved or foreign object fails to authenticate', async () => {
    const dir = tempDir('crypt-swap');
    // Enough rows for several packs (small packs) and frames.
    const db = demoDb(dir, 3000);
    const repo = join(dir, 'repo');
    await init(repo, { packBytes: 256 << 10, compression: 'none', encryption: { passphrase: Buffer.from('pw'), scryptLogN: 10 } });
    await backup(db, repo, keys('pw'));
    const into = join(dir, 'out.db');
    const packs = objects(repo, 'packs');
    expect(packs.length).toBeGreaterThan(1);
    const big = packs.map((f) => ({ f, size: fs.statSync(f).size })).sort((a, b) => b.size - a.size)[0]!;
    expect(big.size).toBeGreaterThan(2 * (64 << 10));
    const keep = (f: string) => fs.readFileSync(f);
    const put = (f: string, data: Buffer) => fs.writeFileSync(f, data);
    const restoreFails = async (what: string) => {
      await expectCode(restore('latest', repo, { into, ...keys('pw') }), 'E_AUTH');
      expect(fs.existsSync(into), what).toBe(false);
    };
    // Truncated at a frame boundary (a shorter object that is all whole frames), and by one byte.
    const original = keep(big.f);
    put(big.f, original.subarray(0, 25 + (64 << 10) + 16));
    await restoreFails('truncated at a frame');
    put(big.f, original.subarray(0, original.length - 1));
    await restoreFails('truncated by a byte');
    // Two frames swapped.
    const frame = (64 << 10) + 16;
    put(big.f, Buffer.concat([original.subarray(0, 25), original.subarray(25 + frame, 25 + 2 * frame), original.subarray(25, 25 + frame), original.subarray(25 + 2 * frame)]));
    await restoreFails('frames reordered');
    put(big.f, original);
    // One pack's content under another pack's name.
    const other = packs.find((f) => f !== big.f)!;
    const otherData = keep(other);
    put(other, original);
    await restoreFails('swapped');
    put(other, otherData);
    // An index file moved to the manifests' folder (under the manifest's name).
    const manifest = objects(repo, 'snapshots')[0]!;
    const manifestData = keep(manifest);
    put(manifest, keep(objects(repo, 'index')[0]!));
    await restoreFails('index as manifest');
    put(manifest, manifestData);
    // The same object from another repository (same database, same passphrase) under this name.
    const repo2 = join(dir, 'repo2');
    await init(repo2, { packBytes: 256 << 10, compression: 'none', encryption: { passphrase: Buffer.from('pw'), scryptLogN: 10 } });
    await backup(db, repo2, keys('pw'));
    put(manifest, keep(objects(repo2, 'snapshots')[0]!));
    await restoreFails('foreign manifest');
    put(manifest, manifestData);
    const restored = await restore('latest', repo, { into, ...keys('pw') });
    expect(restored.rows).toBeGreaterThan(0);
    expect(await engineDigests(into)).toEqual(await engineDigests(db));
  });
});

describe('keyed ids and names', { timeout: 180_000 }, () => {
  it('the same database in two encrypted repositories gives different chunk ids and names; an unencrypted one uses SHA-256', async () => {
    const dir = tempDir('crypt-ids');
    const db = demoDb(dir, 500);
    const ids = async (location: string, pass?: string) => {
      const repo = await Repository.open(location, pass ? keys(pass) : {});
      try {
        const index = await repo.loadIndex(true);
        const out = new Set<string>();
        for (let p = 0; p < index.packs.length; p++) for (let e = 0; e < index.packEntries(p); e++) out.add(index.chunkAt(p, e)!);
        return out;
      } finally {
        await repo.close();
      }
    };
    const a = await encryptedRepo(join(dir), 'same', db);
    const bDir = join(dir, 'b');
    fs.mkdirSync(bDir);
    const b = await encryptedRepo(bDir, 'same', db);
    const plain = join(dir, 'plain');
    await init(plain);
    const p = await backup(db, plain);
    const [idsA, idsB, idsPlain] = [await ids(a.repo, 'same'), await ids(b.repo, 'same'), await ids(plain)];
    expect(idsA.size).toBe(idsPlain.size);
    expect(idsA.size).toBeGreaterThan(10);
    for (const id of idsA) {
      expect(idsB.has(id)).toBe(false);
      expect(idsPlain.has(id)).toBe(false);
    }
    // Stored names: neither the plaintext's hashes nor each other's.
    const names = (r: string) => new Set(files(r).map((f) => f.split('/').pop()!).filter((n) => /^[0-9a-f]{64}$/.test(n)));
    const [nA, nB, nP] = [names(a.repo), names(b.repo), names(plain)];
    for (const n of nA) {
      expect(nB.has(n)).toBe(false);
      expect(nP.has(n)).toBe(false);
    }
    expect(nA.has(a.snap.id)).toBe(false);
    expect(nP.has(p.id)).toBe(true);
    // Dedup still works within each repository, and prune keeps what a snapshot needs.
    const again = await backup(db, a.repo, keys('same'));
    expect(again.stats.newChunks).toBe(0);
    await prune(a.repo, keys('same'));
    await verify(a.repo, { readData: true, ...keys('same') });
  });

  it('keyed ids are the same whether the extension or JavaScript chunked and hashed: each path deduplicates against the other', () => {
    const dir = tempDir('crypt-paths');
    const db = demoDb(dir, 600);
    const env = { SCRIPTORIUM_PASSWORD: 'paths' };
    expect(cli(dir, ['init', '--encrypt', 'repo'], env).code).toBe(0);
    const js = JSON.parse(cli(dir, ['backup', '--repo', 'repo', db, '--json'], { ...env, SCRIPTORIUM_NO_EXTENSION: '1' }).stdout);
    expect(js.stats.newChunks).toBeGreaterThan(0);
    const native = JSON.parse(cli(dir, ['backup', '--repo', 'repo', db, '--json'], env).stdout);
    expect(native.stats.newChunks).toBe(0);
    expect(native.stats.chunks).toBe(js.stats.chunks);
    expect(cli(dir, ['verify', '--read-data', '--repo', 'repo'], env).code).toBe(0);
  });
});
