/**
 * The AWS SDK is loaded only when an s3:// repository is opened: a local-repository user never loads
 * it. And the built CLI loads it as the build's bundle (dist/vendor/s3-sdk.js), not as published. Watched
 * with a module-resolution hook in the CLI process (no S3 server needed).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { CLI } from '../export-import/helpers.js';
import { demoDb, tempDir } from '../repository/helpers.js';
import { freePort } from './moto.js';

it('a local repository never loads the AWS SDK; an s3:// one loads its bundle', async () => {
  const dir = tempDir('s3-lazy');
  const hooks = join(dir, 'hooks');
  mkdirSync(hooks);
  writeFileSync(join(hooks, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  if (/@aws-sdk|@smithy|s3-sdk/.test(specifier)) appendFileSync(process.env.TRACE_FILE, specifier + '\\n');
  return next(specifier, context);
}
`);
  writeFileSync(join(hooks, 'register.mjs'), `import { register } from 'node:module';\nregister(new URL('./hooks.mjs', import.meta.url));\n`);
  const trace = join(dir, 'trace');
  writeFileSync(trace, '');
  const run = (args: string[]) => spawnSync(process.execPath, ['--import', join(hooks, 'register.mjs'), CLI, ...args], {
    cwd: dir, encoding: 'utf8', env: { ...process.env, TRACE_FILE: trace, AWS_ACCESS_KEY_ID: 'AKIDLAZY', AWS_SECRET_ACCESS_KEY: 'lazy-secret', SCRIPTORIUM_S3_RETRY_ATTEMPTS: '1' },
  });
  const repo = join(dir, 'repo');
  const db = demoDb(dir, 100);
  for (const args of [['init', repo], ['backup', db, '--repo', repo], ['snapshots', '--repo', repo], ['verify', '--repo', repo]]) {
    const r = run(args);
    expect(r.status, r.stderr).toBe(0);
  }
  expect(readFileSync(trace, 'utf8')).toBe('');
  // The positive control: an s3:// location (a closed port: it fails, after loading the SDK).
  const r = run(['snapshots', '--repo', 's3://some-bucket/x', '--s3-endpoint', `http://127.0.0.1:${await freePort()}`]);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/E_IO/);
  expect(r.stderr).not.toMatch(/looks like a bug/);
  const loaded = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  expect(loaded.some((s) => s.endsWith('/vendor/s3-sdk.js'))).toBe(true);
  // Nothing of the SDK as published: everything the store sends is inside the bundle.
  expect(loaded.filter((s) => /@aws-sdk|@smithy/.test(s))).toEqual([]);
}, 60_000);
