/**
 * The test harness's S3 server: Python moto's `moto_server`, started on a free loopback port by the test
 * file that needs it and stopped after. When moto_server is not installed, {@link MOTO} is undefined and
 * the S3 tests skip with a message saying so (CI installs it: .ci/run).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** Path of the moto_server executable, or undefined when it is not on PATH. */
export const MOTO = findOnPath('moto_server');

// CI (.ci/run) must run the S3 tests: there a missing server is a failure, not a skip.
if (!MOTO && process.env.SCRIPTORIUM_REQUIRE_S3_TESTS === '1') {
  throw new Error('moto_server is not installed, and SCRIPTORIUM_REQUIRE_S3_TESTS=1 (CI) requires the S3 tests to run: pip install "moto[server]==5.2.1"');
}

/** Why S3 tests are skipped, for the skip message. */
export const MOTO_MISSING = 'moto_server is not installed (pip install "moto[server]"): S3 tests skipped';

/** Test credentials: moto accepts any; these must never appear in a URL or a log line. */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// The S3 store's local cache of index files and manifests: a fresh one per test file, never the user's.
process.env.SCRIPTORIUM_CACHE_DIR = mkdtempSync(join(tmpdir(), 'scriptorium-s3-cache-'));

export const TEST_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDTESTSCRIPTORIUM1', AWS_SECRET_ACCESS_KEY: 'secret+Test/Scriptorium+do-not-leak' };

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A free TCP port on 127.0.0.1 (the kernel's choice; closed again before it is returned). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A running moto_server. */
export interface Moto {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts moto_server on a free port and waits until it answers. */
export async function startMoto(): Promise<Moto> {
  if (!MOTO) throw new Error(MOTO_MISSING);
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const child = spawn(MOTO, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    const endpoint = `http://127.0.0.1:${port}`;
    if (await answers(endpoint, child, 30_000)) {
      return { endpoint, port, stop: () => stop(child) };
    }
    await stop(child);
    if (tries >= 2) throw new Error(`moto_server did not start: ${stderr}`);
  }
}

async function answers(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) return false;
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  return false;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Creates a bucket on the server with the SDK (optionally with Object Lock, which implies versioning). */
export async function createBucket(endpoint: string, bucket: string, objectLock = false): Promise<void> {
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: TEST_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket, ...(objectLock ? { ObjectLockEnabledForBucket: true } : {}) }));
  } finally {
    client.destroy();
  }
}

/** Reads an object's stored bytes with a plain SDK client (not the store under test). */
export async function rawGet(endpoint: string, bucket: string, key: string): Promise<Buffer> {
  const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: TEST_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  } finally {
    client.destroy();
  }
}

/** The Object Lock retention of an object, read with a plain SDK client. */
export async function rawRetention(endpoint: string, bucket: string, key: string): Promise<{ mode?: string; until?: Date }> {
  const { S3Client, HeadObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: TEST_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
  try {
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { ...(head.ObjectLockMode ? { mode: head.ObjectLockMode } : {}), ...(head.ObjectLockRetainUntilDate ? { until: new Date(head.ObjectLockRetainUntilDate) } : {}) };
  } finally {
    client.destroy();
  }
}

/** Every key under `prefix` in `bucket`, with a plain SDK client. */
export async function rawList(endpoint: string, bucket: string, prefix: string): Promise<string[]> {
  const { S3Client, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: TEST_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
  try {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
      for (const o of page.Contents ?? []) out.push(o.Key!);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  } finally {
    client.destroy();
  }
}
