#!/usr/bin/env node
/**
 * Backup and restore of one database to a local repository and to an S3 server (moto_server, started
 * here on a free loopback port), through the CLI, with wall time and peak RSS (`/usr/bin/time -v`) and
 * the requests each S3 run made; and restic's backup of the same database's `.dump` to the same server
 * as the peer. A measurement script, not part of the test suite (the figures):
 *
 *   npm run build && node bench/s3-perf.mjs <db> [workdir]
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const [db, workArg] = process.argv.slice(2);
if (!db) {
  console.error('usage: node bench/s3-perf.mjs <db> [workdir]');
  process.exit(2);
}
const work = workArg ? resolve(workArg) : mkdtempSync(join(tmpdir(), 'scriptorium-s3-perf-'));
mkdirSync(work, { recursive: true });
const cli = resolve(new URL('../dist/cli/main.js', import.meta.url).pathname);

const port = await new Promise((res) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => res(p));
  });
});
const endpoint = `http://127.0.0.1:${port}`;
const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
try {
  for (let i = 0; ; i++) {
    try {
      await fetch(`${endpoint}/moto-api/`);
      break;
    } catch {
      if (i > 100) throw new Error('moto_server did not start');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const env = {
    ...process.env, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench-secret', AWS_ENDPOINT_URL_S3: endpoint,
    SCRIPTORIUM_CACHE_DIR: join(work, 'cache'), RESTIC_PASSWORD: 'bench', AWS_DEFAULT_REGION: 'us-east-1',
  };
  // Create the bucket with a signed request: a throwaway SDK client.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench-secret' } });
  await client.send(new CreateBucketCommand({ Bucket: 'bench' }));
  client.destroy();

  /** Runs a shell command under /usr/bin/time -v: wall seconds, peak RSS MB, stdout. */
  const timed = (label, command) => {
    const r = spawnSync('/usr/bin/time', ['-v', 'bash', '-c', command], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr.slice(-2000)}`);
    const wall = /Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
    const seconds = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : NaN;
    const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024;
    return { label, seconds, rssMB: rss, stdout: r.stdout };
  };
  const q = (s) => `'${s.replace(/'/g, "'\\''")}'`;
  const local = join(work, 'local-repo');
  const s3 = 's3://bench/repo';
  execFileSync(process.execPath, [cli, 'init', local, '-q'], { env });
  execFileSync(process.execPath, [cli, 'init', '--repo', s3, '-q'], { env });
  const rows = [];
  const add = (r, extra = '') => {
    rows.push({ ...r, extra });
    console.log(`${r.label.padEnd(34)} ${r.seconds.toFixed(2).padStart(7)} s  ${r.rssMB.toFixed(0).padStart(5)} MB  ${extra}`);
  };
  const requests = (out) => {
    const j = JSON.parse(out);
    return j.requests ? `requests ${JSON.stringify(j.requests)}` : '';
  };
  add(timed('backup → local', `node ${q(cli)} backup ${q(db)} --repo ${q(local)} --json`));
  const b = timed('backup → moto_server', `node ${q(cli)} backup ${q(db)} --repo ${s3} --json`);
  add(b, requests(b.stdout));
  const b2 = timed('backup unchanged → moto_server', `node ${q(cli)} backup ${q(db)} --repo ${s3} --json`);
  add(b2, requests(b2.stdout));
  add(timed('restore ← local', `node ${q(cli)} restore latest --repo ${q(local)} --into ${q(join(work, 'r-local.db'))} --force --json`));
  const r = timed('restore ← moto_server', `node ${q(cli)} restore latest --repo ${s3} --into ${q(join(work, 'r-s3.db'))} --force --json`);
  add(r, requests(r.stdout));
  const restic = spawnSync('restic', ['version'], { encoding: 'utf8' });
  if (restic.status === 0) {
    const rr = `s3:${endpoint}/bench/restic`;
    execFileSync('restic', ['-r', rr, 'init', '-q'], { env });
    add(timed('restic backup of .dump → moto_server', `set -o pipefail; sqlite3 ${q(db)} .dump | restic -r ${rr} backup -q --stdin --stdin-filename dump.sql`));
  } else {
    console.log('restic not installed: peer skipped (apt-get install restic)');
  }
  const get = (l) => rows.find((x) => x.label === l);
  console.log(`\nbackup s3/local ${(get('backup → moto_server').seconds / get('backup → local').seconds).toFixed(2)}×, ` +
    `restore s3/local ${(get('restore ← moto_server').seconds / get('restore ← local').seconds).toFixed(2)}×` +
    (get('restic backup of .dump → moto_server') ? `, restic/scriptorium backup ${(get('restic backup of .dump → moto_server').seconds / get('backup → moto_server').seconds).toFixed(2)}×` : ''));
} finally {
  moto.kill('SIGTERM');
  if (!workArg) rmSync(work, { recursive: true, force: true });
}
