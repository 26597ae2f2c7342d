/** Where an S3 repository is (`s3://bucket/prefix`) and how to reach it (endpoint, region, path style). */
import { UsageError } from '../core/errors.js';

/** A parsed `s3://bucket/prefix` location. */
export interface S3Location {
  bucket: string;
  /** The key prefix of the repository inside the bucket: `''` or a path ending in `/`. */
  prefix: string;
}

/**
 * How to reach the server. Every field is optional: what is missing comes from the usual AWS
 * environment variables (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_PROFILE`, …)
 * and the shared config/credentials files, as the AWS SDK reads them. Credentials are never an option:
 * they come from the environment, a profile, or instance metadata only.
 */
export interface S3Settings {
  /** A custom endpoint (MinIO, R2, B2, a test server): `https://host[:port]`. */
  endpoint?: string;
  /** Address buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`. */
  pathStyle?: boolean;
  region?: string;
  /** How many requests run at once (the HTTP connections kept open). Default {@link DEFAULT_CONNECTIONS}. */
  connections?: number;
  /** A request with no answer (or no progress) for this long is abandoned and retried. Default 30 s. */
  timeoutMs?: number;
  /** Retry policy; see {@link RetryPolicy}. */
  retry?: Partial<RetryPolicy>;
  /** Called with one line per retried request (debug output). Lines never carry a secret. */
  log?: (line: string) => void;
}

/** Full-jitter exponential backoff: attempt n waits a random time in [0, min(capMs, baseMs·2^n)). */
export interface RetryPolicy {
  /** Most attempts of one request, the first included. */
  attempts: number;
  baseMs: number;
  capMs: number;
  /** Bound on the time one request may spend waiting between its attempts, in total. */
  totalMs: number;
}

export const DEFAULT_CONNECTIONS = 8;
export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseMs: 200, capMs: 20_000, totalMs: 120_000 };

/** Bucket names as S3 accepts them (3-63 of lowercase letters, digits, dots and hyphens). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** Prefix segments: what a store key's segments may be (see checkKey), so every full key is a valid S3 key. */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Parses `s3://bucket[/prefix]`. Throws a UsageError for anything else, and refuses credentials in the
 * URL (`s3://KEY:SECRET@bucket`): they belong in the environment or a profile, never on a command line.
 *
 * @example
 * ```ts
 * parseS3Location('s3://backups/app/prod'); // { bucket: 'backups', prefix: 'app/prod/' }
 * ```
 */
export function parseS3Location(location: string): S3Location {
  // No key, prefix or bucket has an `@`: one anywhere means credentials (whose secret may hold a `/`).
  if (/^s3:\/\/.*@/is.test(location)) {
    throw new UsageError(`s3: ${redactS3(location)}: credentials in the repository location are refused`, {
      hint: 'Give credentials through AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or instance metadata, never in --repo.',
    });
  }
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/i.exec(location);
  if (!match) throw new UsageError(`s3: ${redactS3(location)}: not an s3://bucket/prefix location`, { hint: 'Write the repository as s3://bucket or s3://bucket/some/prefix.' });
  const bucket = match[1]!;
  if (!BUCKET.test(bucket)) throw new UsageError(`s3: ${location}: "${bucket}" is not a valid bucket name`, { hint: 'Bucket names are 3-63 lowercase letters, digits, dots and hyphens.' });
  const path = (match[2] ?? '').replace(/\/+$/, '');
  if (path !== '') {
    for (const segment of path.split('/')) {
      if (!SEGMENT.test(segment)) throw new UsageError(`s3: ${location}: invalid prefix segment ${JSON.stringify(segment)}`, { hint: 'Prefix segments are letters, digits, ".", "_" and "-", not starting with "."; no empty segment.' });
    }
    if (path.length > 512) throw new UsageError(`s3: ${location}: the prefix is longer than 512 characters`);
  }
  return { bucket, prefix: path === '' ? '' : `${path}/` };
}

/** Removes anything before an `@` in an s3:// URL, so that a pasted secret never reaches a message. */
export function redactS3(location: string): string {
  return location.replace(/^(s3:\/\/).*@/is, '$1***@');
}

/**
 * Checks a `--s3-endpoint` value: an http(s) URL without credentials, path or query. Returns it
 * without a trailing slash.
 */
export function checkEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(`s3: endpoint ${JSON.stringify(endpoint.replace(/\/\/.*@/s, '//***@'))} is not a URL`, { hint: 'Pass --s3-endpoint https://host[:port] (for example https://ACCOUNT.r2.cloudflarestorage.com).' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`s3: endpoint ${url.protocol}// is not http or https`, { hint: 'Pass --s3-endpoint https://host[:port].' });
  if (url.username || url.password) throw new UsageError('s3: credentials in the endpoint URL are refused', { hint: 'Give credentials through the AWS environment variables or a profile.' });
  if (url.search || url.hash) throw new UsageError(`s3: endpoint ${url.origin}: a query or fragment is not allowed`);
  return endpoint.replace(/\/+$/, '');
}

/** Whether path-style addressing is needed by default: a server addressed by IP or `localhost`. */
export function needsPathStyle(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === 'localhost' || /^[0-9.]+$/.test(host) || host.startsWith('[');
}
