/** Which failures of an S3 request are worth another attempt, and how long to wait before it. */
import { ScriptoriumError } from '../core/errors.js';
import type { RetryPolicy } from './s3-location.js';

/** HTTP statuses that say "try again": request timeout, too many requests, and every server error. */
const RETRY_STATUS = (status: number) => status === 408 || status === 429 || status >= 500;
/** S3 error codes that say the same, whatever the status they came with. */
const RETRY_NAMES = new Set(['SlowDown', 'RequestTimeout', 'RequestTimeoutException', 'ThrottlingException', 'Throttling',
  'InternalError', 'ServiceUnavailable', 'RequestThrottled', 'TimeoutError', 'BandwidthLimitExceeded']);
/** Socket-level failures: resets, timeouts, a connection dropped mid-body. */
const RETRY_ERRNO = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET', 'ECONNCLOSED', 'ESOCKETTIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH']);

/** A failure found by the store itself that a new attempt may not repeat (a body cut short, a body that does not match its ETag). */
export class TransientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TransientError';
  }
}

/** The HTTP status an SDK error carries, if any. */
export function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** The S3 error code (`NoSuchKey`, `SlowDown`, …) or socket error code of `err`. */
export function codeOf(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string } | null;
  return e?.Code ?? e?.code ?? e?.name ?? 'Error';
}

/** Whether `err` is worth another attempt of the same request. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  if (err instanceof ScriptoriumError || err instanceof TypeError) return false;
  const status = statusOf(err);
  if (status !== undefined && RETRY_STATUS(status)) return true;
  const e = err as { name?: string; code?: string; Code?: string; $retryable?: unknown } | null;
  if (e === null || typeof e !== 'object') return false;
  if (RETRY_NAMES.has(e.name ?? '') || RETRY_NAMES.has(e.Code ?? '')) return true;
  if (RETRY_ERRNO.has(e.code ?? '')) return true;
  // An answer the SDK could not parse (a 200 with a body cut short or replaced): no status of an S3 error.
  if (status !== undefined && status < 300) return true;
  // No answer at all (the connection went away before a status line).
  return status === undefined && !(e.name === 'CredentialsProviderError' || e.name === 'AbortError');
}

/** The wait before attempt `attempt` (1 = the first retry): full jitter, uniform in [0, min(cap, base·2^attempt)). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(policy.capMs, policy.baseMs * 2 ** attempt));
}

/** A short description of a failure for the debug log: status and code, never a header, URL or body. */
export function describeFailure(err: unknown): string {
  const status = statusOf(err);
  const code = codeOf(err);
  return status === undefined ? code : `${status} ${code}`;
}
