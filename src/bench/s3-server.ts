/**
 * A local S3 server for the benchmark and the S3 tests: Python moto's `moto_server`, started on a free
 * loopback port and stopped after. Shared by `scriptorium bench` (its `s3` section) and test/s3, so it
 * lives here rather than in the tests; nothing of it is loaded by the CLI's repository commands.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** The path of executable `name` on PATH, or undefined. */
export function findOnPath(name: string): string | undefined {
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

/** Starts moto_server (`executable`) on a free loopback port and waits until it answers; three tries. */
export async function startMotoServer(executable: string): Promise<Moto> {
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const child = spawn(executable, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
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

/** Creates `bucket` on the server with a throwaway SDK client (optionally with Object Lock). */
export async function createBucketOn(endpoint: string, bucket: string, credentials: { accessKeyId: string; secretAccessKey: string }, objectLock = false): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket, ...(objectLock ? { ObjectLockEnabledForBucket: true } : {}) }));
  } finally {
    client.destroy();
  }
}
