/**
 * `COPY … TO STDOUT` as a stream of the COPY data in pieces of one socket read each, de-framed in one
 * tight loop per read. pg-copy-streams' own parser takes every CopyData message (one per row: about a
 * million for the 1M-row demo) through a buffer list, a `subarray` and a concatenation, which cost a
 * backup about a fifth of its main thread (measured with --cpu-prof on the demo); this parser moves
 * each row's bytes over the headers in the socket read's own buffer, and pushes that. Everything else (submitting the query, an
 * ErrorResponse or the end of the COPY handing the connection back to `pg`, backpressure) is the
 * stream's own: only its `_parse` is replaced, with the same contract (returns whether to read on).
 */
import type { PgDriver } from './driver.js';

const COPY_DATA = 0x64; // d
const ERROR_RESPONSE = 0x45; // E
/** Messages that may come between CopyData ones without ending the copy (see pg-copy-streams). */
const INTERSPERSED = new Set([0x48 /* CopyOutResponse */, COPY_DATA, 0x53 /* ParameterStatus */, 0x4e /* NoticeResponse */, 0x41 /* NotificationResponse */]);

/** The internals of pg-copy-streams' CopyStreamQuery (7.x) that the replaced `_parse` uses. */
interface CopyToInternals {
  _buffer: { push(b: Buffer): void };
  _detach(): void;
  _cleanup(): void;
  push(chunk: Buffer | null): boolean;
  _parse(chunk: Buffer): boolean | undefined;
}

/** The parser's state between two socket reads. */
interface Frame {
  /** Bytes of the current message's payload still to come. */
  left: number;
  /** The current message's type. */
  code: number;
  /** A message header (type and length) cut by the end of a read. */
  head: Buffer | null;
}

/** Starts nothing: returns the stream of `COPY … TO STDOUT` for `sql`, to be given to `client.query`. */
export function copyOutStream(driver: PgDriver, sql: string): ReturnType<PgDriver['copyTo']> {
  const stream = driver.copyTo(sql);
  const s = stream as unknown as CopyToInternals;
  if (typeof s._parse !== 'function' || typeof s._detach !== 'function' || !s._buffer) return stream; // another version: its own parser
  const frame: Frame = { left: 0, code: 0, head: null };
  s._parse = (chunk: Buffer) => parse(s, frame, chunk);
  return stream;
}

function parse(s: CopyToInternals, f: Frame, input: Buffer): boolean | undefined {
  const chunk = f.head ? Buffer.concat([f.head, input]) : input;
  f.head = null;
  const len = chunk.length;
  // The rows' bytes move left over the headers, in the read's own buffer (nobody else holds it):
  // no new buffer a read, which would be megabytes of garbage a second for the collector.
  const out = chunk;
  let n = 0;
  let i = 0;
  let done = false;
  if (f.left > 0) {
    // The rest of a message a read cut.
    const take = Math.min(f.left, len);
    if (f.code === COPY_DATA) n = take; // already in place
    f.left -= take;
    i = take;
    if (f.left === 0 && !INTERSPERSED.has(f.code)) done = true;
  }
  while (!done && i < len) {
    const code = chunk[i]!;
    if (code === ERROR_RESPONSE) {
      // pg parses the error (and what follows) and fails the query: the stream emits it.
      s._buffer.push(chunk.subarray(i));
      if (n > 0) s.push(out.subarray(0, n));
      s._detach();
      return undefined;
    }
    if (len - i < 5) {
      f.head = Buffer.from(chunk.subarray(i));
      i = len;
      break;
    }
    const end = i + 5 + chunk.readUInt32BE(i + 1) - 4;
    i += 5;
    if (code === COPY_DATA) {
      const stop = end <= len ? end : len;
      out.copyWithin(n, i, stop); // n < i: bytes from i on are still the read's
      n += stop - i;
      i = stop;
      if (end > len) {
        f.left = end - len;
        f.code = code;
      }
      continue;
    }
    if (end > len) {
      f.left = end - len;
      f.code = code;
      i = len;
      break;
    }
    i = end;
    if (!INTERSPERSED.has(code)) done = true; // CopyDone (or anything else): the copy is over
  }
  const drained = n > 0 ? s.push(out.subarray(0, n)) : true;
  if (done) {
    // What follows the copy (CommandComplete, ReadyForQuery) is pg's to parse.
    s._buffer.push(chunk.subarray(i));
    s._detach();
    s.push(null);
    s._cleanup();
  }
  return drained;
}
