/**
 * Encrypted exports are standard age files, checked against the real `age` CLI (Debian's age 1.1) and,
 * for passphrase files (which the CLI only takes from a terminal), against `age-encryption`, the
 * TypeScript implementation by age's author. Both directions, every way a file can be wrong (a wrong
 * key, a flipped bit anywhere, a cut at a chunk boundary), the keys `scriptorium keygen` writes, and
 * secrets kept out of history, --json output and errors.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Decrypter, Encrypter } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X25519Identity, parseIdentityFile } from '../src/codecs/age-keys.js';
import { ENCRYPTED_CHUNK_BYTES, NONCE_BYTES } from '../src/codecs/age-format.js';
import { ageSource } from '../src/codecs/age-reader.js';
import { AgeSealer } from '../src/codecs/age-writer.js';
import type { ByteSource } from '../src/formats/byte-reader.js';
import { compareDatabases } from '../src/engines/sqlite/compare.js';
import { isScriptoriumError } from '../src/core/errors.js';
import { exportTo } from '../src/export.js';
import { importFrom } from '../src/import.js';
import { CLI, cli, type CliResult, makeDb, removeDir, tempDir } from './export-import/helpers.js';

const AGE = '/usr/bin/age';
const AGE_KEYGEN = '/usr/bin/age-keygen';

let dir: string;
let source: string;
let plain: string;
let key: string;
let pub: string;
let otherKey: string;
/** The CLI's environment: no secrets inherited, a low scrypt work factor so that tests stay quick. */
let env: NodeJS.ProcessEnv;

function run(cmd: string, args: string[], input?: Buffer): Buffer {
  const r = spawnSync(cmd, args, { input, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.toString()}`);
  return r.stdout;
}

const file = (name: string): string => path.join(dir, name);

/** Headers end at the line after "\n---"; returns the payload's offset (after the 16-byte nonce). */
function payloadStart(data: Buffer): number {
  const close = data.indexOf('\n---');
  return data.indexOf(0x0a, close + 1) + 1 + NONCE_BYTES;
}

function expectFailure(r: CliResult, codes: string[]): void {
  expect(r.code, r.stderr).not.toBe(0);
  const m = /^scriptorium: error (E_[A-Z_]+): \S/m.exec(r.stderr);
  expect(m, r.stderr).not.toBeNull();
  expect(codes, r.stderr).toContain(m![1]);
  expect(r.stderr).toMatch(/^ {2}hint: \S/m);
  expect(r.stderr).not.toMatch(/looks like a bug|E_INTERNAL|^\s+at /m);
}

/** Imports `input` through the CLI and expects one of `codes`, with no target and no temporary left. */
function expectImportFailure(input: string, codes: string[], extra: string[] = [], runEnv = env): CliResult {
  const work = fs.mkdtempSync(path.join(dir, 'fail-'));
  const into = path.join(work, 'out.db');
  const r = cli(['import', input, '--into', into, ...extra], { env: runEnv });
  expectFailure(r, codes);
  expect(fs.readdirSync(work)).toEqual([]);
  return r;
}

beforeAll(async () => {
  expect(fs.existsSync(CLI), 'run `npm run build` first').toBe(true);
  expect(fs.existsSync(AGE), 'install the Debian package age').toBe(true);
  dir = tempDir('age');
  // ~600 KB of ndjson: ten 64 KiB chunks, so that there are first, middle and last chunks to damage.
  source = makeDb(file('source.db'), (db) => {
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, b BLOB); CREATE INDEX t_v ON t(v)');
    const put = db.prepare('INSERT INTO t(v, b) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 4000; i++) put.run(randomBytes(48).toString('hex'), randomBytes(8));
    })();
  });
  plain = file('plain.ndjson');
  await exportTo(source, { format: 'ndjson', output: plain });
  key = file('key.txt');
  run(AGE_KEYGEN, ['-o', key]);
  pub = run(AGE_KEYGEN, ['-y', key]).toString().trim();
  otherKey = file('other.txt');
  run(AGE_KEYGEN, ['-o', otherKey]);
  env = { ...process.env, NO_COLOR: '1', SCRIPTORIUM_SCRYPT_LOG_N: '10' };
  delete env.SCRIPTORIUM_PASSWORD;
  delete env.SCRIPTORIUM_IDENTITY_FILE;
});
afterAll(() => removeDir(dir));

/** Imports `input` with the CLI and checks the database equals the source. */
function expectImports(input: string, extra: string[], runEnv = env): void {
  const into = path.join(fs.mkdtempSync(path.join(dir, 'ok-')), 'out.db');
  const r = cli(['import', input, '--into', into, ...extra, '--json'], { env: runEnv });
  expect(r.code, r.stderr).toBe(0);
  const result = JSON.parse(r.stdout) as { encryption?: string; tables: { verified: boolean }[] };
  expect(result.encryption).toBeDefined();
  expect(result.tables.every((t) => t.verified)).toBe(true);
  expect(compareDatabases(source, into)).toEqual([]);
}

describe('keys', () => {
  it('reads age-keygen identities and derives the public key age-keygen -y prints', () => {
    const ids = parseIdentityFile(fs.readFileSync(key, 'utf8'), key);
    expect(ids).toHaveLength(1);
    expect(ids[0]!.recipient.toString()).toBe(pub);
    expect(JSON.stringify(ids[0])).toBe(JSON.stringify({ recipient: pub })); // never the secret
  });

  it('keygen writes a 0600 identity file in age-keygen format that age accepts both ways, and never overwrites one', () => {
    const k = file('scriptorium-key.txt');
    const r = cli(['keygen', '-o', k], { env });
    expect(r.code, r.stderr).toBe(0);
    const text = fs.readFileSync(k, 'utf8');
    expect(fs.statSync(k).mode & 0o777).toBe(0o600);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^# created: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(lines[1]).toMatch(/^# public key: age1[02-9ac-hj-np-z]{58}$/);
    expect(lines[2]).toMatch(/^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/);
    expect(lines.slice(3)).toEqual(['']);
    const recipient = lines[1]!.slice('# public key: '.length);
    expect(r.stdout).toContain(recipient);
    expect(r.stdout + r.stderr).not.toContain('AGE-SECRET-KEY');
    expect(run(AGE_KEYGEN, ['-y', k]).toString().trim()).toBe(recipient);
    // age encrypts to it and decrypts with it.
    const message = randomBytes(100_000);
    const sealed = run(AGE, ['-r', recipient], message);
    expect(run(AGE, ['-d', '-i', k], sealed).equals(message)).toBe(true);

    const again = cli(['keygen', '-o', k], { env });
    expectFailure(again, ['E_TARGET_EXISTS']);
    expect(fs.readFileSync(k, 'utf8')).toBe(text);
  });
});

describe('scriptorium encrypts, age decrypts', () => {
  for (const compress of ['none', 'gzip', 'zstd'] as const) {
    it(`export --recipient (${compress}) is an age file that age -d opens, with the compressed export inside`, () => {
      const out = file(`to-age-${compress}.age`);
      const r = cli(['export', source, '-f', 'ndjson', ...(compress === 'none' ? [] : ['-c', compress]), '-o', out, '-r', pub, '--json'], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).encryption).toBe('recipients');
      expect(fs.readFileSync(out).subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
      const inner = run(AGE, ['-d', '-i', key, out]);
      const magic = { none: '{"format"', gzip: '\x1f\x8b', zstd: '\x28\xb5\x2f\xfd' }[compress];
      expect(inner.subarray(0, magic.length).equals(Buffer.from(magic, 'latin1'))).toBe(true);
      // The decrypted file is a plain export that imports as the source.
      const dec = file(`decrypted-${compress}`);
      fs.writeFileSync(dec, inner);
      const into = file(`from-decrypted-${compress}.db`);
      expect(cli(['import', dec, '--into', into], { env }).code).toBe(0);
      expect(compareDatabases(source, into)).toEqual([]);
      // And scriptorium opens its own file directly.
      expectImports(out, ['-i', key]);
    });
  }

  it('encrypts to several recipients (flags and a recipients file) on stdout; each key opens it', () => {
    const otherPub = run(AGE_KEYGEN, ['-y', otherKey]).toString().trim();
    const list = file('recipients.txt');
    fs.writeFileSync(list, `# the other one\n\n${otherPub}\n`);
    const r = cli(['export', source, '-f', 'sql', '-o', '-', '-r', pub, '-R', list, '-q'], { env });
    expect(r.code, r.stderr).toBe(0);
    const a = run(AGE, ['-d', '-i', key], r.stdoutBytes);
    const b = run(AGE, ['-d', '-i', otherKey], r.stdoutBytes);
    expect(a.equals(b)).toBe(true);
    expect(a.toString('utf8', 0, 200)).toMatch(/PRAGMA|BEGIN|CREATE|--/);
  });

  it('export --encrypt (passphrase from SCRIPTORIUM_PASSWORD or --password-file) opens with age-encryption', async () => {
    const viaEnv = file('pass-env.age');
    expect(cli(['export', source, '-f', 'ndjson', '-c', 'zstd', '-o', viaEnv, '--encrypt', '-q'], { env: { ...env, SCRIPTORIUM_PASSWORD: 'correct horse' } }).code).toBe(0);
    const pw = file('pw.txt');
    fs.writeFileSync(pw, 'battery staple\n');
    const viaFile = file('pass-file.age');
    const r = cli(['export', source, '-f', 'ndjson', '-o', viaFile, '--encrypt', '--password-file', pw, '-q'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(viaFile).toString('latin1', 0, 80)).toMatch(/^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n/);

    for (const [f, pass] of [[viaEnv, 'correct horse'], [viaFile, 'battery staple']] as const) {
      const d = new Decrypter();
      d.addPassphrase(pass);
      const inner = Buffer.from(await d.decrypt(fs.readFileSync(f)));
      const dec = `${f}.dec`;
      fs.writeFileSync(dec, inner);
      const into = `${f}.db`;
      expect(cli(['import', dec, '--into', into], { env }).code).toBe(0);
      expect(compareDatabases(source, into)).toEqual([]);
      expectImports(f, [], { ...env, SCRIPTORIUM_PASSWORD: pass });
    }
    expectImports(viaFile, ['--password-file', pw]);
  });

  it('a passphrase file gets its header last (scrypt runs during the export) and opens like the same export to a stream', async () => {
    const encryption = { kind: 'passphrase' as const, passphrase: Buffer.from('late header'), logN: 10 };
    for (const compress of ['none', 'zstd'] as const) {
      const out = file(`late-${compress}.age`);
      await exportTo(source, { format: 'sql', compress, output: out, encryption });
      const chunks: Buffer[] = [];
      const { Writable } = await import('node:stream');
      const stream = new Writable({ write: (c: Buffer, _e, done) => (chunks.push(c), done()) });
      await exportTo(source, { format: 'sql', compress, stream, encryption });
      const seekable = fs.readFileSync(out);
      const streamed = Buffer.concat(chunks);
      // A real header where the export first wrote placeholder bytes, of the same length as a stream's.
      expect(seekable.toString('latin1', 0, 80)).toMatch(/^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n/);
      expect(payloadStart(seekable)).toBe(payloadStart(streamed));
      const opened: Buffer[] = [];
      for (const data of [seekable, streamed]) {
        const d = new Decrypter();
        d.addPassphrase('late header');
        const inner = Buffer.from(await d.decrypt(data));
        opened.push(inner);
        const dec = file(`late-${compress}-${opened.length}.sql${compress === 'zstd' ? '.zst' : ''}`);
        fs.writeFileSync(dec, inner);
        const into = `${dec}.db`;
        const r = cli(['import', dec, '--into', into], { env });
        expect(r.code, r.stderr).toBe(0);
        expect(compareDatabases(source, into)).toEqual([]);
      }
      expect(Math.abs(opened[0]!.length - opened[1]!.length)).toBeLessThan(64); // (only the export time differs)
      expectImports(out, [], { ...env, SCRIPTORIUM_PASSWORD: 'late header' });
      // A wrong passphrase is still refused by the header's scrypt stanza, as for any file.
      expectImportFailure(out, ['E_AUTH'], [], { ...env, SCRIPTORIUM_PASSWORD: 'wrong' });
    }
  });

  it('without SCRIPTORIUM_PASSWORD, --password-file or a terminal, --encrypt is a usage error and writes nothing', () => {
    const out = file('no-pass.age');
    // setsid: no controlling terminal, as under a service manager or in CI.
    const r = spawnSync('setsid', ['-w', process.execPath, CLI, 'export', source, '-f', 'ndjson', '-o', out, '--encrypt'], { env, cwd: dir });
    const result: CliResult = { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString(), stdoutBytes: r.stdout };
    expectFailure(result, ['E_USAGE']);
    expect(result.stderr).toMatch(/SCRIPTORIUM_PASSWORD/);
    expect(fs.existsSync(out)).toBe(false);
    expectFailure(cli(['export', source, '-f', 'ndjson', '-o', out, '--encrypt', '-r', pub], { env }), ['E_USAGE']);
    expectFailure(cli(['export', source, '-f', 'ndjson', '-o', out, '-r', 'age1notakey'], { env }), ['E_USAGE']);
    expect(fs.existsSync(out)).toBe(false);
  });

  it.skipIf(!fs.existsSync('/usr/bin/python3'))('on a terminal, the passphrase is asked twice without echo (export) and once (import)', () => {
    // python3's pty module gives the CLI a real terminal; it answers each prompt once it has appeared.
    const driver = file('pty-driver.py');
    fs.writeFileSync(
      driver,
      [
        'import os, pty, sys, time, select',
        'answers = sys.argv[1].split(",")',
        'pid, fd = pty.fork()',
        'if pid == 0:',
        '    os.execvp(sys.argv[2], sys.argv[2:])',
        'out = b""',
        'def read_until(token, start, timeout):',
        '    global out',
        '    end = time.time() + timeout',
        '    while token not in out[start:] and time.time() < end:',
        '        r, _, _ = select.select([fd], [], [], 0.2)',
        '        if r:',
        '            try: out += os.read(fd, 4096)',
        '            except OSError: return len(out)',
        '    return out.find(token, start) + len(token)',
        'pos = 0',
        'for a in answers:',
        '    pos = read_until(b": ", pos, 30)',
        '    os.write(fd, a.encode() + b"\\r")',
        '    pos = read_until(b"\\n", pos, 10)',
        'read_until(b"\\x00never", pos, 20)',
        '_, status = os.waitpid(pid, 0)',
        'sys.stdout.write(out.decode(errors="replace"))',
        'sys.exit(os.waitstatus_to_exitcode(status))',
      ].join('\n'),
    );
    const secret = `tty-${randomBytes(6).toString('hex')}`;
    const out = file('tty.age');
    const exp = spawnSync('/usr/bin/python3', [driver, `${secret},${secret}`, process.execPath, CLI, 'export', source, '-f', 'ndjson', '-o', out, '--encrypt', '-q'], { env, cwd: dir });
    const shown = exp.stdout.toString();
    expect(exp.status, shown + exp.stderr.toString()).toBe(0);
    expect(shown).toMatch(/Passphrase for the export: [\s\S]*\(again\): /);
    expect(shown).not.toContain(secret);
    const into = file('tty.db');
    const imp = spawnSync('/usr/bin/python3', [driver, secret, process.execPath, CLI, 'import', out, '--into', into, '-q'], { env, cwd: dir });
    expect(imp.status, imp.stdout.toString()).toBe(0);
    expect(imp.stdout.toString()).not.toContain(secret);
    expect(compareDatabases(source, into)).toEqual([]);
  });

  it('an empty export still makes a valid age file (one empty last chunk)', async () => {
    const empty = makeDb(file('empty.db'), () => undefined);
    const out = file('empty.age');
    await exportTo(empty, { format: 'sql', output: out, encryption: { kind: 'recipients', recipients: parseIdentityFile(fs.readFileSync(key, 'utf8'), key).map((i) => i.recipient) } });
    expect(run(AGE, ['-d', '-i', key, out]).toString()).toMatch(/BEGIN|PRAGMA|--/);
  });
});

describe('age encrypts, scriptorium imports', () => {
  it('imports a file age encrypted to a recipient, with --identity, SCRIPTORIUM_IDENTITY_FILE and from stdin', () => {
    const f = file('by-age.age');
    run(AGE, ['-r', pub, '-o', f, plain]);
    expectImports(f, ['-i', key]);
    expectImports(f, [], { ...env, SCRIPTORIUM_IDENTITY_FILE: key });
    // Several identity files: the right one anywhere in the list.
    expectImports(f, ['-i', otherKey, '-i', key]);
    const zst = file('by-age.zst.age');
    fs.writeFileSync(zst, run(AGE, ['-r', pub], run('/usr/bin/zstd', ['-c', '-q', plain])));
    expectImports(zst, ['-i', key]);
    const into = file('from-stdin.db');
    const r = cli(['import', '-', '--into', into, '-i', key], { env, input: fs.readFileSync(f) });
    expect(r.code, r.stderr).toBe(0);
    expect(compareDatabases(source, into)).toEqual([]);
  });

  it('imports a file age-encryption encrypted with a passphrase', async () => {
    const e = new Encrypter();
    e.setPassphrase('s3cret phrase');
    e.setScryptWorkFactor(12);
    const f = file('by-typage.age');
    fs.writeFileSync(f, await e.encrypt(fs.readFileSync(plain)));
    expectImports(f, [], { ...env, SCRIPTORIUM_PASSWORD: 's3cret phrase' });
  });

  it('a wrong key or passphrase is E_AUTH with a hint, and a missing one says what to pass', async () => {
    const f = file('by-age.age');
    if (!fs.existsSync(f)) run(AGE, ['-r', pub, '-o', f, plain]);
    const wrongKey = expectImportFailure(f, ['E_AUTH'], ['-i', otherKey]);
    expect(wrongKey.stderr).toMatch(/identity/);
    const none = expectImportFailure(f, ['E_USAGE']);
    expect(none.stderr).toMatch(/--identity/);

    const e = new Encrypter();
    e.setPassphrase('right');
    e.setScryptWorkFactor(10);
    const p = file('pass.age');
    fs.writeFileSync(p, await e.encrypt(fs.readFileSync(plain)));
    const wrong = expectImportFailure(p, ['E_AUTH'], [], { ...env, SCRIPTORIUM_PASSWORD: 'wrong' });
    expect(wrong.stderr).toMatch(/wrong passphrase/);
    expect(wrong.stderr).not.toContain('wrong\n'); // the passphrase itself is not echoed
    const noPass = expectImportFailure(p, ['E_USAGE']);
    expect(noPass.stderr).toMatch(/SCRIPTORIUM_PASSWORD|--password-file/);
    // A passphrase file given only a key is refused the same clear way.
    expectImportFailure(p, ['E_USAGE'], ['-i', key]);
  });

  it('refuses a hostile scrypt work factor before doing the work', async () => {
    const e = new Encrypter();
    e.setPassphrase('x');
    e.setScryptWorkFactor(10);
    const data = Buffer.from(await e.encrypt(fs.readFileSync(plain)));
    const text = data.toString('latin1');
    const hostile = file('hostile.age');
    fs.writeFileSync(hostile, Buffer.from(text.replace(/^(-> scrypt \S+) 10$/m, '$1 40'), 'latin1'));
    const started = Date.now();
    const r = expectImportFailure(hostile, ['E_UNSUPPORTED'], [], { ...env, SCRIPTORIUM_PASSWORD: 'x' });
    expect(r.stderr).toMatch(/work factor/);
    expect(Date.now() - started).toBeLessThan(20_000);
    // A non-canonical work factor ("010") is malformed.
    fs.writeFileSync(hostile, Buffer.from(text.replace(/^(-> scrypt \S+) 10$/m, '$1 010'), 'latin1'));
    expectImportFailure(hostile, ['E_CORRUPT'], [], { ...env, SCRIPTORIUM_PASSWORD: 'x' });
  });
});

describe('the STREAM payload at chunk boundaries', () => {
  const SIZES = [0, 1, 65_535, 65_536, 65_537, 131_072, 200_000];

  /** Everything a ByteSource yields. */
  async function drain(source: ByteSource): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const buf = Buffer.alloc(50_000);
      const n = await source.read(buf, 0, buf.length);
      if (n === 0) return Buffer.concat(parts);
      parts.push(buf.subarray(0, n));
    }
  }

  const bufferSource = (data: Buffer): ByteSource => {
    let at = 0;
    return {
      read: async (into, offset, length) => {
        const n = data.copy(into, offset, at, Math.min(data.length, at + Math.min(length, 7_777)));
        at += n;
        return n;
      },
    };
  };

  it('age -d opens what the sealer writes, and the reader opens what age writes, for sizes around 64 KiB', async () => {
    const ids = parseIdentityFile(fs.readFileSync(key, 'utf8'), key);
    for (const size of SIZES) {
      const message = randomBytes(size);
      const sealer = await AgeSealer.create({ kind: 'recipients', recipients: [ids[0]!.recipient] });
      // Written in uneven pieces, so that chunk boundaries fall inside writes.
      const out: Buffer[] = [];
      for (let at = 0; at < size; at += 10_000) sealer.update(message.subarray(at, at + 10_000), out);
      sealer.final(out);
      const sealed = Buffer.concat(out);
      const chunks = Math.max(1, Math.ceil(size / 65_536));
      expect(sealed.length - payloadStart(sealed), `size ${size}`).toBe(size + 16 * chunks);
      expect(run(AGE, ['-d', '-i', key], sealed).equals(message), `age -d, size ${size}`).toBe(true);

      const byAge = run(AGE, ['-r', pub], message);
      const { source } = await ageSource(bufferSource(byAge), { identities: ids });
      expect((await drain(source)).equals(message), `reader, size ${size}`).toBe(true);
    }
  });
});

describe('damaged files', () => {
  let sealed: Buffer;
  let start: number;
  const identities = (): X25519Identity[] => parseIdentityFile(fs.readFileSync(key, 'utf8'), key);

  beforeAll(() => {
    const f = file('damage.age');
    run(AGE, ['-r', pub, '-o', f, plain]);
    sealed = fs.readFileSync(f);
    start = payloadStart(sealed);
    expect(sealed.length - start).toBeGreaterThan(5 * ENCRYPTED_CHUNK_BYTES);
  });

  /** Imports `data` through the library; returns the error code (undefined if it imported). */
  async function importCode(data: Buffer, name: string): Promise<string | undefined> {
    const f = file(`${name}.age`);
    fs.writeFileSync(f, data);
    const into = file(`${name}.db`);
    try {
      await importFrom(f, { into, decrypt: { identities: identities() } });
      return undefined;
    } catch (err) {
      expect(isScriptoriumError(err), String(err)).toBe(true);
      return (err as { code: string }).code;
    } finally {
      expect(fs.existsSync(into), `${name}: nothing written`).toBe(false);
      expect(fs.readdirSync(dir).filter((n) => n.startsWith(`.${name}.db`))).toEqual([]);
      fs.rmSync(f);
    }
  }

  const flip = (at: number, bit = 0): Buffer => {
    const copy = Buffer.from(sealed);
    copy[at] ^= 1 << bit;
    return copy;
  };

  it('a flipped bit in the stanza, the MAC, the nonce and the first, a middle and the last chunk fails through the CLI', () => {
    const headerEnd = start - NONCE_BYTES;
    const positions = {
      intro: 3,
      stanzaArg: sealed.indexOf('X25519') + 12,
      stanzaBody: sealed.indexOf('\n', sealed.indexOf('X25519')) + 5,
      mac: headerEnd - 10,
      nonce: headerEnd + 3,
      firstChunk: start + 100,
      middleChunk: start + 3 * ENCRYPTED_CHUNK_BYTES + 7,
      lastChunkTag: sealed.length - 1,
    };
    for (const [name, at] of Object.entries(positions)) {
      const f = file(`flip-${name}.age`);
      fs.writeFileSync(f, flip(at, 2));
      expectImportFailure(f, ['E_AUTH', 'E_CORRUPT', 'E_TRUNCATED'], ['-i', key]);
    }
    // The payload's damage is an authentication failure, specifically.
    const f = file('flip-payload.age');
    fs.writeFileSync(f, flip(start + 2 * ENCRYPTED_CHUNK_BYTES + 11));
    const r = expectImportFailure(f, ['E_AUTH'], ['-i', key]);
    expect(r.stderr).toMatch(/chunk 2/);
  });

  it('every one of 300 random flipped bits is refused and writes nothing (library)', async () => {
    for (let i = 0; i < 300; i++) {
      // Half in the header, half anywhere in the payload.
      const at = i % 2 === 0 ? Math.floor(Math.random() * start) : start + Math.floor(Math.random() * (sealed.length - start));
      const code = await importCode(flip(at, i % 8), `bit-${i}`);
      expect(['E_AUTH', 'E_CORRUPT', 'E_TRUNCATED'], `byte ${at}`).toContain(code);
      if (at >= start) expect(code, `byte ${at}`).toBe('E_AUTH');
    }
  });

  it('a file cut at any chunk boundary is E_TRUNCATED, never a shorter import', async () => {
    const chunks = Math.ceil((sealed.length - start) / ENCRYPTED_CHUNK_BYTES);
    for (let k = 0; k < chunks; k++) {
      expect(await importCode(sealed.subarray(0, start + k * ENCRYPTED_CHUNK_BYTES), `cut-${k}`), `after ${k} chunks`).toBe('E_TRUNCATED');
    }
    const f = file('cut-cli.age');
    fs.writeFileSync(f, sealed.subarray(0, start + 2 * ENCRYPTED_CHUNK_BYTES));
    expectImportFailure(f, ['E_TRUNCATED'], ['-i', key]);
    // Inside the header or the nonce: truncated too; inside a chunk: it cannot authenticate.
    expect(await importCode(sealed.subarray(0, 40), 'cut-header')).toBe('E_TRUNCATED');
    expect(await importCode(sealed.subarray(0, start - 4), 'cut-nonce')).toBe('E_TRUNCATED');
    expect(['E_AUTH', 'E_TRUNCATED']).toContain(await importCode(sealed.subarray(0, start + ENCRYPTED_CHUNK_BYTES + 500), 'cut-inside'));
    expect(['E_AUTH', 'E_TRUNCATED']).toContain(await importCode(sealed.subarray(0, sealed.length - 1), 'cut-last-byte'));
  });

  it('data appended after the last chunk is refused', async () => {
    expect(await importCode(Buffer.concat([sealed, Buffer.from('x')]), 'appended-byte')).toMatch(/E_AUTH|E_CORRUPT/);
    const extra = Buffer.concat([sealed, randomBytes(ENCRYPTED_CHUNK_BYTES)]);
    expect(await importCode(extra, 'appended-chunk')).toMatch(/E_AUTH|E_CORRUPT/);
  });
});

describe('secrets', () => {
  it('passphrases and private keys never reach history, --json output or errors; there is no --password flag', () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'cwd-'));
    const passphrase = `pw-${randomBytes(8).toString('hex')}`;
    const secretKey = fs.readFileSync(key, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
    const withPass = { ...env, SCRIPTORIUM_PASSWORD: passphrase };
    const out = path.join(cwd, 'x.age');
    const outputs: CliResult[] = [
      cli(['export', source, '-f', 'ndjson', '-o', out, '--encrypt', '--json'], { cwd, env: withPass }),
      cli(['import', out, '--into', path.join(cwd, 'a.db'), '--json'], { cwd, env: withPass }),
      cli(['import', out, '--into', path.join(cwd, 'b.db'), '--json'], { cwd, env: { ...env, SCRIPTORIUM_PASSWORD: `${passphrase}-wrong` } }),
      cli(['export', source, '-f', 'ndjson', '-o', path.join(cwd, 'y.age'), '-r', pub, '--json'], { cwd, env }),
      cli(['import', path.join(cwd, 'y.age'), '--into', path.join(cwd, 'c.db'), '-i', key, '--json'], { cwd, env }),
      cli(['import', path.join(cwd, 'y.age'), '--into', path.join(cwd, 'd.db'), '-i', otherKey, '--json'], { cwd, env }),
    ];
    expect(outputs.map((r) => r.code)).toEqual([0, 0, 1, 0, 0, 1]);
    // A key file that is not one: the error names the line, never its content.
    const bad = path.join(cwd, 'bad-key.txt');
    // (Its last character changed: to another one, or 1 run in 32, where it was Q, the key stayed valid.)
    fs.writeFileSync(bad, `# note\n${secretKey.slice(0, -1)}${secretKey.endsWith('Q') ? 'P' : 'Q'}\n`);
    const badKey = cli(['import', out, '--into', path.join(cwd, 'e.db'), '-i', bad], { cwd, env });
    expectFailure(badKey, ['E_USAGE']);
    expect(badKey.stderr).toMatch(/line 2/);
    outputs.push(badKey);

    const history = fs.readFileSync(path.join(cwd, 'backups/.scriptorium-history.jsonl'), 'utf8');
    expect(history.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(6);
    const secretBody = secretKey.slice('AGE-SECRET-KEY-1'.length, -6);
    for (const text of [history, ...outputs.flatMap((r) => [r.stdout, r.stderr])]) {
      expect(text).not.toContain(passphrase);
      expect(text).not.toContain(secretBody);
      expect(text.toLowerCase()).not.toContain(secretBody.toLowerCase());
    }

    const flag = cli(['export', source, '-f', 'ndjson', '-o', path.join(cwd, 'z.age'), '--encrypt', '--password', passphrase], { cwd, env });
    expect(flag.code).not.toBe(0);
    expect(flag.stderr).toMatch(/unknown option '--password'/);
    expect(fs.existsSync(path.join(cwd, 'z.age'))).toBe(false);
  });
});
