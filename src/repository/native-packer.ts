/**
 * Packs filled and compressed by the extension (native/scriptorium_pack.inc): with a packer, the chunk
 * scanner (`scriptorium_chunks`) hands each batch's bytes to it instead of to JavaScript, backup tells it
 * which chunks of the batch are new, and a thread of its own compresses each sealed pack and names it.
 * The rows never cross into JavaScript, which keeps the main thread and the garbage collector out of a
 * backup's way; JavaScript only sees chunk ids, and the finished pack files it stores.
 *
 * The pack files are those {@link PackWriter} writes (same body layout, same framing), so a repository
 * does not tell which wrote them.
 */
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { ScriptoriumError } from '../core/errors.js';
import { CODEC_IDS, ZSTD_DEFAULT_LEVEL, type CompressionCodec } from './compression.js';

/**
 * A pack file the packer compressed, with its name: in memory, or (after {@link NativePacker.writeFiles})
 * on disk, or (after {@link NativePacker.spillTo}, without files, for a pack too large to hold) in an
 * unnamed temporary file, open as `fd`: the taker reads its `size` bytes and closes it.
 */
export type PackedFile = { hash: string; file: Buffer } | { hash: string; path: string; size: number } | { hash: string; fd: number; size: number };

/**
 * The error the extension reports when a spill file (a huge row's, or a pack's too large to hold) in
 * `dir` cannot be written or read back, as a ScriptoriumError (E_NO_SPACE for a full disk or quota,
 * E_IO otherwise); undefined for any other error.
 */
export function temporaryFileError(err: unknown, dir: string): ScriptoriumError | undefined {
  const m = err instanceof Error ? /(could not (?:write|read back) a temporary file.*)$/.exec(err.message) : null;
  if (!m) return undefined;
  if (/no space left|quota exceeded|errno (?:28|122)\b/i.test(m[1]!)) {
    return new ScriptoriumError('E_NO_SPACE', `backup: temporary file in ${dir}: no space left on the device (${m[1]})`, {
      cause: err,
      hint: 'A row larger than 16 MiB passes through TMPDIR (its encoding: twice a BLOB\'s size). Free space there or point TMPDIR at a disk with room; the backup removes the packs it wrote.',
    });
  }
  return new ScriptoriumError('E_IO', `backup: temporary file in ${dir}: ${m[1]}`, {
    cause: err,
    hint: 'A row larger than 16 MiB passes through TMPDIR: point TMPDIR at a writable directory with room for it (twice a BLOB\'s size).',
  });
}

/** Bytes of what {@link NativePacker.take} returns for a pack in an unnamed file: SHA-256, size, descriptor. */
const FD_RESULT_BYTES = 44;

export class NativePacker {
  readonly handle: number;
  readonly #db: Database.Database;
  readonly #add: Database.Statement;
  readonly #seal: Database.Statement;
  readonly #take: Database.Statement;
  #zstd: Database.Statement | null | undefined;
  #batch: Database.Statement | null | undefined;
  #batchDigest: Database.Statement | undefined;
  #entries = 0;
  #bytes = 0;
  #files = false;
  /** Whether the packer's thread seals the pack files it writes (see {@link sealFiles}). */
  #sealed = false;
  /** The spill directory (see {@link spillTo}), for messages. */
  #spillDir = '';
  /** Where the pack files go (the repository's folder), for messages. */
  #where = '';

  private constructor(db: Database.Database, handle: number) {
    this.#db = db;
    this.handle = handle;
    this.#add = db.prepare('SELECT scriptorium_pack_add(?, ?)').pluck();
    this.#seal = db.prepare('SELECT scriptorium_pack_seal(?)').pluck();
    this.#take = db.prepare('SELECT scriptorium_pack_take(?, ?)').pluck();
  }

  /**
   * A packer for packs of `codec` (zstd or none), or undefined when the extension cannot build them
   * here (not built, no threads, no SHA instructions, or gzip): backup then packs in JavaScript.
   */
  static async open(codec: CompressionCodec, level: number | undefined): Promise<NativePacker | undefined> {
    if (codec === 'gzip') return undefined;
    const [{ default: Database }, { loadExtension }] = await Promise.all([import('better-sqlite3'), import('../engines/sqlite/extension.js')]);
    // A connection of its own: the source's is busy while its scan iterates.
    const db = new Database(':memory:');
    let handle = 0;
    try {
      if (loadExtension(db)) {
        const zstdLevel = codec === 'zstd' ? (level ?? ZSTD_DEFAULT_LEVEL) : 0;
        handle = db.prepare('SELECT scriptorium_packer(?, ?)').pluck().get(CODEC_IDS[codec], zstdLevel) as number;
      }
    } catch {
      handle = 0; // an extension built before packers existed
    }
    if (!handle) {
      db.close();
      return undefined;
    }
    return new NativePacker(db, handle);
  }

  /** Entries in the pack being filled. */
  get entries(): number {
    return this.#entries;
  }

  /** Bytes of chunks in the pack being filled. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Records that the next chunk stored (`length` bytes) is an entry of the pack being filled; returns its number. */
  addEntry(length: number): number {
    this.#bytes += length;
    return this.#entries++;
  }

  /**
   * Appends the chunks of the batch the scan handed over last whose flag is 1 (one byte per chunk);
   * they must be the entries recorded with {@link addEntry} since the last batch.
   */
  add(flags: Uint8Array): void {
    this.#add.get(this.handle, flags);
  }

  /**
   * Hands over a batch cut outside the extension's scanner (PostgreSQL's COPY text, see
   * copy-chunker.ts) as the scanner hands its own, for {@link add}: returns the chunks' SHA-256 ids
   * (32 bytes each), and adds `data` to the running digest {@link batchDigest} returns. Undefined when
   * the extension was built before it could (then the caller hashes and packs in JavaScript).
   */
  handBatch(data: Buffer, chunks: Buffer): Buffer | undefined {
    if (this.#batch === undefined) {
      try {
        this.#batch = this.#db.prepare('SELECT scriptorium_pack_batch(?, ?, ?)').pluck();
        this.#batchDigest = this.#db.prepare('SELECT scriptorium_pack_batch_digest(?)').pluck();
      } catch (err) {
        if (!(err instanceof Error && /no such function/.test(err.message))) throw err;
        this.#batch = null;
      }
    }
    return (this.#batch?.get(this.handle, data, chunks) as Buffer | undefined) ?? undefined;
  }

  /** Whether {@link handBatch} works with this extension. */
  get handsBatches(): boolean {
    if (this.#batch === undefined) this.handBatch(Buffer.alloc(0), Buffer.alloc(0));
    if (this.#batch) this.batchDigest(); // the probe's (empty) digest: the next table starts afresh
    return this.#batch !== null;
  }

  /** The SHA-256 of every batch {@link handBatch} took since the last call (a table's digest); starts the next. */
  batchDigest(): Buffer {
    return this.#batchDigest!.get(this.handle) as Buffer;
  }

  /** Ends the pack being filled and queues it for compression; returns how many sealed packs were not taken. */
  seal(): number {
    const waiting = this.#seal.get(this.handle) as number;
    this.#entries = 0;
    this.#bytes = 0;
    return waiting;
  }

  /**
   * From now on (before the first seal), the packer's thread writes each pack file itself, synced, to
   * `prefix` followed by a number, and {@link take} returns its path: the files never enter JavaScript.
   * An extension built before it could keeps handing the files over.
   */
  writeFiles(prefix: string): void {
    try {
      this.#db.prepare('SELECT scriptorium_packer_files(?, ?)').get(this.handle, prefix);
      this.#files = true;
      this.#where = dirname(prefix);
    } catch (err) {
      if (!(err instanceof Error && /no such function/.test(err.message))) throw err;
    }
  }

  /**
   * From now on (before {@link writeFiles} and the first seal), the packer's thread seals each pack
   * file it writes as the object `packs/<its SHA-256>` of repository `repositoryId`, with `secret` (the
   * data objects' key, 32 bytes): the same bytes the SealedStore would write (object-seal.ts, symmetric
   * stanza), so an encrypted backup keeps the files out of JavaScript too. {@link take}'s hash and size
   * stay the plaintext pack's. A pack too large to hold is not sealed here: it comes as an open unnamed
   * file of plaintext (as without files), for the caller to seal frame by frame.
   *
   * Returns whether the packer seals: false when the extension cannot here (OpenSSL's functions not
   * found in the process, or an extension built before it could); the caller then must not call
   * {@link writeFiles} (the files would be plaintext), and seals in JavaScript as before.
   */
  sealFiles(repositoryId: string, secret: Buffer): boolean {
    if (this.#files) throw new TypeError('NativePacker.sealFiles: call it before writeFiles');
    try {
      this.#sealed = this.#db.prepare('SELECT scriptorium_packer_seal(?, ?, ?)').pluck().get(this.handle, repositoryId, secret) === 1;
    } catch (err) {
      if (!(err instanceof Error && /no such function/.test(err.message))) throw err;
    }
    return this.#sealed;
  }

  /**
   * From now on (before the first scan and seal), a chunk whose encoding outgrows 16 MiB (a row with a
   * huge value) goes through an unnamed temporary file in `dir` instead of memory, and so, without
   * {@link writeFiles}, does a pack too large to hold ({@link take} hands it over open). The files are
   * unnamed (O_TMPFILE, or unlinked at once): nothing is left behind a killed process. Returns whether
   * the extension can (one built before it could holds such chunks in memory).
   */
  spillTo(dir: string): boolean {
    try {
      this.#db.prepare('SELECT scriptorium_packer_spill(?, ?)').get(this.handle, dir);
      this.#spillDir = dir;
      return true;
    } catch (err) {
      if (!(err instanceof Error && /no such function/.test(err.message))) throw err;
      return false;
    }
  }

  /**
   * The oldest sealed pack once compressed (and, with {@link writeFiles}, written); undefined when none
   * is sealed or, without `wait`, none is ready.
   */
  take(wait: boolean): PackedFile | undefined {
    let out: Buffer | null;
    try {
      out = this.#take.get(this.handle, wait ? 1 : 0) as Buffer | null;
    } catch (err) {
      const spill = temporaryFileError(err, this.#spillDir);
      if (spill) throw spill;
      const m = err instanceof Error ? /could not write the pack file: (.*)$/.exec(err.message) : null;
      if (!m) throw err;
      // The packer reports strerror's text: a full disk is E_NO_SPACE like any other write's.
      if (/no space left|quota exceeded/i.test(m[1]!)) {
        throw new ScriptoriumError('E_NO_SPACE', `repository ${this.#where}: put pack: no space left on the device (${m[1]})`, {
          cause: err,
          hint: 'Free some space (or raise the quota) and try again; the backup removes the packs it wrote, and nothing that existed before was changed.',
        });
      }
      throw new ScriptoriumError('E_IO', `fs: put pack: ${m[1]}`, {
        cause: err,
        hint: 'check that the repository directory exists, is writable and has free space',
      });
    }
    if (!out) return undefined;
    const hash = out.toString('hex', 0, 32);
    // A pack file is longer than 12 bytes (magic, codec, entry count): 44 bytes are a descriptor.
    // A sealing packer hands a pack too large to hold over open too (its paths are longer: absolute, under the repository).
    if ((!this.#files || this.#sealed) && out.length === FD_RESULT_BYTES) return { hash, size: Number(out.readBigUInt64LE(32)), fd: out.readUInt32LE(40) };
    if (!this.#files) return { hash, file: out.subarray(32) };
    return { hash, size: Number(out.readBigUInt64LE(32)), path: out.toString('utf8', 40) };
  }

  /** `body` compressed whole with zstd at `level`, or undefined when the extension cannot (then use zstd-napi). */
  compress(body: Buffer, level: number): Buffer | undefined {
    if (this.#zstd === undefined) {
      try {
        this.#zstd = this.#db.prepare('SELECT scriptorium_zstd(?, ?)').pluck();
      } catch {
        this.#zstd = null; // an extension built without it
      }
    }
    return (this.#zstd?.get(body, level) as Buffer | undefined) ?? undefined;
  }

  close(): void {
    if (!this.#db.open) return;
    try {
      this.#db.prepare('SELECT scriptorium_packer_close(?)').get(this.handle);
    } finally {
      this.#db.close();
    }
  }
}
