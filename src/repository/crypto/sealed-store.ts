/**
 * The store of an encrypted repository as the rest of the code sees it: a Store that seals every
 * object it puts (packs, manifests, index files, locks) and opens and authenticates every object it
 * gets (and format 2's snapshot list), under its logical name, while the names in the underlying store are keyed permutations of
 * those names (see RepositoryCrypto.storedName). `config` and `keys/` pass through: they are read
 * before there is a key. Everything above this layer (framing, compression, ids by content) is the
 * same as in an unencrypted repository.
 */
import { read as readCallback } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';
import { noSpaceError, ScriptoriumError } from '../../core/errors.js';
import type { GetOptions, GetPiecesOptions, ListOptions, RemovedTemporary, Store, StoreCapabilities, StoreEntry } from '../../stores/store.js';
import { maxSealedBytes, openObjectBytes, openObjectPieces, sealObjectBytes, sealObjectPieces } from './object-seal.js';

const readFd = promisify(readCallback);
/** Sealed bytes gathered before one write of {@link SealedStore.putFromFd}. */
const WRITE_BYTES = 1 << 20;
import type { RepositoryCrypto, SealedKind } from './repository-crypto.js';

const NAMED = /^(packs|snapshots|index)\/(?:([0-9a-f]{2})\/)?([0-9a-f]{64})$/;
const LOCK = /^locks\/[0-9a-z]{1,64}$/;

interface Mapped {
  kind: SealedKind;
  /** The key in the underlying store. */
  stored: string;
  /** The logical name bound into the seal. */
  name: string;
}

export class SealedStore implements Store {
  readonly #base: Store;
  readonly #crypto: RepositoryCrypto;
  readonly removeStaleTemporaries?: (olderThanMs: number) => Promise<number>;
  readonly removeDeadTemporaries?: () => Promise<RemovedTemporary[]>;
  readonly putNew?: (key: string, data: Uint8Array) => Promise<boolean>;
  readonly putIfAbsent?: (key: string, data: Uint8Array) => Promise<boolean>;
  readonly heldUntil?: (key: string) => Promise<Date | undefined>;
  readonly getPieces?: (key: string, options?: GetPiecesOptions) => AsyncIterable<Buffer>;
  readonly putFromFd?: (key: string, fd: number, size: number) => Promise<void>;

  constructor(base: Store, crypto: RepositoryCrypto) {
    this.#base = base;
    this.#crypto = crypto;
    if (base.removeStaleTemporaries) this.removeStaleTemporaries = (ms) => base.removeStaleTemporaries!(ms);
    if (base.removeDeadTemporaries) this.removeDeadTemporaries = () => base.removeDeadTemporaries!();
    // S3's conditional put and Object Lock work on the stored (sealed, renamed) object.
    if (base.putNew) {
      this.putNew = async (key, data) => {
        const mapped = this.#map(key);
        if (!mapped) return base.putNew!(key, data);
        return base.putNew!(mapped.stored, sealObjectBytes(data, this.#crypto.repositoryId, mapped.name, this.#crypto.sealKey(mapped.kind)));
      };
    }
    if (base.putIfAbsent) {
      this.putIfAbsent = async (key, data) => {
        const mapped = this.#map(key);
        if (!mapped) return base.putIfAbsent!(key, data);
        return base.putIfAbsent!(mapped.stored, sealObjectBytes(data, this.#crypto.repositoryId, mapped.name, this.#crypto.sealKey(mapped.kind)));
      };
    }
    if (base.heldUntil) this.heldUntil = (key) => base.heldUntil!(this.#map(key)?.stored ?? key);
    // A huge pack is opened frame by frame: each frame is used only once its tag is checked.
    if (base.getPieces) this.getPieces = (key, options) => this.#getPieces(key, options ?? {});
    // No tempPrefix/putFile: a pack must pass through here to be sealed, so the native packer hands its files over.
    // A pack too large to hold comes as an open file: sealed frame by frame into a temporary file of the base.
    if (base.tempPrefix && base.putFile) this.putFromFd = (key, fd, size) => this.#putFromFd(key, fd, size);
  }

  get location(): string {
    return this.#base.location;
  }

  get capabilities(): StoreCapabilities {
    return this.#base.capabilities;
  }

  /** The underlying store (for key objects and config). */
  get base(): Store {
    return this.#base;
  }

  /**
   * What the native packer needs to seal pack files itself, on its own thread (native-packer.ts,
   * sealFiles): the repository id and the data objects' secret bound into every pack's seal, and where
   * its files go (temporary files of the base, moved into place by {@link putSealedFile}). Undefined
   * when packs are sealed to a recipient (public-key mode: an X25519 exchange a pack, done here) or the
   * base store takes no files (the memory store): the packs then come through {@link put}.
   */
  packSealing(): { repositoryId: string; secret: Buffer; tempPrefix: () => string } | undefined {
    const key = this.#crypto.sealKey('packs');
    const base = this.#base;
    if (key.kind !== 'secret' || !base.tempPrefix || !base.putFile) return undefined;
    return { repositoryId: this.#crypto.repositoryId, secret: key.secret, tempPrefix: () => base.tempPrefix!() };
  }

  /**
   * Moves the pack file at `path` (a temporary file of the base, see {@link packSealing}) into place as
   * pack `key`: the file is already sealed as that pack (the native packer sealed it under `key`'s
   * name), so it goes to the stored name unchanged. Nothing here reads it: a file sealed under another
   * name, or not sealed at all, fails authentication when it is read, like any damaged pack.
   */
  async putSealedFile(key: string, path: string): Promise<void> {
    const mapped = this.#map(key);
    if (!mapped || mapped.kind !== 'packs' || !this.#base.putFile) throw new TypeError(`SealedStore.putSealedFile: ${key} is not a pack of a store that takes files`);
    await this.#base.putFile(mapped.stored, path);
  }

  /** How `key` is stored, or undefined for a key that passes through unsealed. */
  #map(key: string): Mapped | undefined {
    const m = NAMED.exec(key);
    if (m) {
      const kind = m[1] as SealedKind;
      if ((kind === 'packs') !== (m[2] !== undefined) || (m[2] !== undefined && !m[3]!.startsWith(m[2]))) return undefined;
      const stored = this.#crypto.storedName(m[3]!);
      return { kind, name: `${kind}/${m[3]}`, stored: kind === 'packs' ? `packs/${stored.slice(0, 2)}/${stored}` : `${kind}/${stored}` };
    }
    if (LOCK.test(key)) return { kind: 'locks', name: key, stored: key };
    // The snapshot list names snapshots, hosts, sources and times: metadata, sealed like the index.
    if (key === 'snapshot-list') return { kind: 'snapshot-list', name: key, stored: key };
    return undefined;
  }

  /** The logical key of stored key `key` (the inverse of #map), or the key itself when it is no sealed object. */
  #unmap(key: string): string {
    const m = NAMED.exec(key);
    if (!m) return key;
    const kind = m[1]!;
    if ((kind === 'packs') !== (m[2] !== undefined) || (m[2] !== undefined && !m[3]!.startsWith(m[2]))) return key;
    const plain = this.#crypto.plainName(m[3]!);
    return kind === 'packs' ? `packs/${plain.slice(0, 2)}/${plain}` : `${kind}/${plain}`;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const mapped = this.#map(key);
    if (!mapped) return this.#base.put(key, data);
    return this.#base.put(mapped.stored, sealObjectBytes(data, this.#crypto.repositoryId, mapped.name, this.#crypto.sealKey(mapped.kind)));
  }

  /** {@link Store.putFromFd}: sealed in pieces (exactly as {@link put} seals it) into a temporary file of the base, then moved into place. */
  async #putFromFd(key: string, fd: number, size: number): Promise<void> {
    const mapped = this.#map(key);
    if (!mapped) throw new TypeError(`SealedStore.putFromFd: ${key} is not a sealed object`);
    const path = `${this.#base.tempPrefix!()}s`;
    const read = async (into: Buffer, at: number): Promise<void> => {
      for (let got = 0; got < into.length;) {
        const { bytesRead } = await readFd(fd, into, got, into.length - got, at + got);
        if (bytesRead === 0) throw new ScriptoriumError('E_IO', `put ${key}: its temporary file ended after ${at + got} of its ${size} bytes`);
        got += bytesRead;
      }
    };
    try {
      const out = await open(path, 'wx', 0o600);
      try {
        let held: Buffer[] = [];
        let heldBytes = 0;
        for await (const piece of sealObjectPieces(size, read, this.#crypto.repositoryId, mapped.name, this.#crypto.sealKey(mapped.kind))) {
          held.push(piece);
          heldBytes += piece.length;
          if (heldBytes >= WRITE_BYTES) {
            await writeAll(out, held);
            held = [];
            heldBytes = 0;
          }
        }
        await writeAll(out, held);
        await out.sync();
      } finally {
        await out.close();
      }
    } catch (err) {
      await unlink(path).catch(() => undefined);
      throw noSpaceError(err, `repository ${this.location}: put ${key}`) ?? err;
    }
    await this.#base.putFile!(mapped.stored, path);
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    const mapped = this.#map(key);
    if (!mapped) return this.#base.get(key, options);
    const sealed = await this.#base.get(mapped.stored, { ...options, ...(options.maxBytes === undefined ? {} : { maxBytes: maxSealedBytes(options.maxBytes) }) });
    return openObjectBytes(sealed, this.#crypto.repositoryId, mapped.name, this.#crypto.openKey(mapped.kind));
  }

  async *#getPieces(key: string, options: GetPiecesOptions): AsyncGenerator<Buffer> {
    const mapped = this.#map(key);
    if (!mapped) {
      yield* this.#base.getPieces!(key, options);
      return;
    }
    const maxBytes = options.maxBytes === undefined ? undefined : maxSealedBytes(options.maxBytes);
    const { size } = await this.#base.stat(mapped.stored);
    const sealed = this.#base.getPieces!(mapped.stored, { ...options, ...(maxBytes === undefined ? {} : { maxBytes }) });
    yield* openObjectPieces(sealed, size, this.#crypto.repositoryId, mapped.name, this.#crypto.openKey(mapped.kind));
  }

  has(key: string): Promise<boolean> {
    return this.#base.has(this.#map(key)?.stored ?? key);
  }

  async stat(key: string): Promise<StoreEntry> {
    const entry = await this.#base.stat(this.#map(key)?.stored ?? key);
    return { key, size: entry.size };
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<StoreEntry> {
    // Logical and stored names share their folders, but not the two-digit folders of packs.
    const folder = /^packs\/[0-9a-f]{2}\/?$/.test(prefix) ? 'packs/' : prefix;
    for await (const entry of this.#base.list(folder, options)) {
      const key = this.#unmap(entry.key);
      if (key.startsWith(prefix)) yield { key, size: entry.size };
    }
  }

  delete(key: string): Promise<void> {
    return this.#base.delete(this.#map(key)?.stored ?? key);
  }

  close(): Promise<void> {
    return this.#base.close();
  }
}

/** Writes `pieces` to `out` at its position, all of them (writev may write fewer bytes than asked). */
async function writeAll(out: import('node:fs/promises').FileHandle, pieces: Buffer[]): Promise<void> {
  let left = pieces;
  while (left.length > 0) {
    const { bytesWritten } = await out.writev(left);
    let skip = bytesWritten;
    while (left.length > 0 && skip >= left[0]!.length) skip -= left.shift()!.length;
    if (skip > 0) left[0] = left[0]!.subarray(skip);
  }
}
