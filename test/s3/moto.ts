/**
 * The test harness's S3 server: Python moto's `moto_server`, started on a free loopback port by the test
 * file that needs it and stopped after. When moto_server is not installed, {@link MOTO} is undefined and
 * the S3 tests skip with a message saying so (CI installs it: .ci/run).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOnPath, startMotoServer, type Moto } from '../../src/bench/s3-server.js';

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

export { freePort, type Moto } from '../../src/bench/s3-server.js';

/** Starts moto_server on a free port and waits until it answers. */
export async function startMoto(): Promise<Moto> {
  if (!MOTO) throw new Error(MOTO_MISSING);
  return startMotoServer(MOTO);
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
