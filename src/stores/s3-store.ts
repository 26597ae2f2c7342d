/**
 * A Store in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Backblaze B2, a test server), on the
 * official AWS SDK v3. The SDK is imported here only (the commands it sends are listed in ./s3-sdk.ts),
 * and only when an S3 store is opened, so that a user of local repositories never loads it.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { S3Client } from './s3-sdk.js';
import { HOST_TAG, processRuns } from '../core/atomic-file.js';
import { NotFoundError, ScriptoriumError, UsageError } from '../core/errors.js';
import { collectSoon } from '../core/memory.js';
import {
  checkEndpoint, DEFAULT_CONNECTIONS, DEFAULT_RETRY, needsPathStyle, parseS3Location, type RetryPolicy, type S3Settings,
} from './s3-location.js';
import { defaultCacheDir, LocalCache } from './local-cache.js';
import { backoffMs, codeOf, describeFailure, isRetryable, statusOf, TransientError } from './s3-retry.js';
import { checkKey, checkPrefix, piecesOptions, type GetOptions, type GetPiecesOptions, type ListOptions, type Store, type StoreCapabilities, type StoreEntry } from './store.js';

type Sdk = typeof import('./s3-sdk.js');

/**
 * The SDK: the bundle `npm run build` makes of ./s3-sdk.js (half the memory and load time of the SDK as
 * published, see scripts/bundle-s3-sdk.mjs), else ./s3-sdk.js itself (from the sources, or a build by tsc alone).
 */
async function loadSdk(): Promise<Sdk> {
  const bundle = new URL('../vendor/s3-sdk.js', import.meta.url);
  return existsSync(fileURLToPath(bundle)) ? (await import(bundle.href)) as Sdk : import('./s3-sdk.js');
}

/** The kinds of request the store makes, as counted in {@link S3Store.requestCounts}. */
export type S3RequestKind = 'GET' | 'PUT' | 'HEAD' | 'LIST' | 'DELETE';

/** What an S3 store promises beyond a Store's capabilities. */
export interface S3Capabilities extends StoreCapabilities {
  /**
   * Objects under {@link S3StoreOptions.immutablePrefixes} are written with `If-None-Match: *`, so that
   * no writer ever replaces an object another wrote. Starts true; turns false (for this store, with a
   * debug line) when the server answers such a put with 501 Not Implemented.
   */
  conditionalPut: boolean;
}

/**
 * Object Lock settings of a repository, kept as metadata of its `config` object
 * (`x-amz-meta-scriptorium-object-lock: COMPLIANCE;30`), so that opening the repository, which reads
 * `config` anyway, learns them without a request of its own.
 */
export interface ObjectLockSettings {
  /** Each immutable object is retained this many days from its upload. */
  days: number;
  mode: 'GOVERNANCE' | 'COMPLIANCE';
}

/** Options of {@link S3Store.open}. */
export interface S3StoreOptions extends S3Settings {
  /**
   * Key prefixes of content-addressed objects (named by the hash of their content): written once with
   * `If-None-Match: *` (a 412 then means the same object is there already) and, with Object Lock,
   * retained. Default: `packs/`, `index/`, `snapshots/`.
   */
  immutablePrefixes?: readonly string[];
  /**
   * Where to cache index files and manifests (`index/`, `snapshots/`) locally; `false`: no cache.
   * Default {@link defaultCacheDir} (the user's cache directory).
   */
  cacheDir?: string | false;
}

/** The metadata objects kept in the local cache: immutable, named by their content, read by most commands. */
const CACHED_PREFIXES = ['index/', 'snapshots/'];

/**
 * The cache entry of `config` (a mutable object, cached only for callers that check it): a first line
 * with its Object Lock metadata (`-` for none), then its content. The name is no store key a
 * repository uses, so that it never collides with one.
 */
const CONFIG_CACHE_KEY = 'meta/config';
const MAX_CONFIG_ENTRY = 1 << 20;
/**
 * The cache entry of the last complete listing of `keys/` (one key a line), and the folder of key
 * objects cached for callers that accept them (`cached`): a key object is only of use to a caller whose
 * passphrase unwraps it, and the secrets it yields open the store's sealed objects or nothing.
 */
const KEYS_LIST_CACHE_KEY = 'meta/keys';
const KEYS = 'keys/';

function configEntry(data: Buffer, lock: ObjectLockSettings | undefined): Buffer {
  return Buffer.concat([Buffer.from(`${lock ? `${lock.mode};${lock.days}` : '-'}\n`), data]);
}

function parseConfigEntry(entry: Buffer, location: string): { data: Buffer; lock: ObjectLockSettings | undefined } | undefined {
  const nl = entry.indexOf(0x0a);
  if (nl < 0 || nl > 32) return undefined;
  const meta = entry.subarray(0, nl).toString('latin1');
  try {
    return { data: entry.subarray(nl + 1), lock: meta === '-' ? undefined : parseLockSettings(meta, location) };
  } catch {
    return undefined;
  }
}

/** A pack file to upload from the disk: its path, size and MD5 (base64, for Content-MD5). */
interface UploadFile {
  path: string;
  size: number;
  /** Its Content-MD5 (base64); not read when its SHA-256 is known (read later if it is needed after all). */
  md5: string | undefined;
  /** The SHA-256 (hex) of its content that the caller vouched for, sent as the signed payload hash where it can be. */
  sha256?: string;
}

/** Bytes read from a pack file at a time: for its MD5 (into one buffer kept for the process), and for its upload. */
const UPLOAD_PIECE = 256 << 10;
const UPLOAD_DIR = 'scriptorium-upload-';
let md5Buffer: Buffer | undefined;

/**
 * Opens the file at `path` (a regular file, no link followed) and returns its size and MD5. Read
 * synchronously into one reused buffer: the file is a pack the packer has just written (in the page
 * cache), and a stream's promise and new buffer per 64 KiB cost a backup of 1M rows ~70 ms of the main
 * thread (measured with --cpu-prof), on the path that feeds the packer.
 */
function uploadFile(path: string, sha256?: string): UploadFile {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new TypeError(`S3Store.putFile: ${path} is not a regular file`);
    if (sha256 !== undefined) return { path, size: st.size, md5: undefined, sha256 };
    const md5 = createHash('md5');
    md5Buffer ??= Buffer.allocUnsafeSlow(UPLOAD_PIECE);
    for (let at = 0; at < st.size;) {
      const n = readSync(fd, md5Buffer, 0, Math.min(UPLOAD_PIECE, st.size - at), at);
      if (n === 0) throw new ScriptoriumError('E_IO', `s3: ${path} became shorter while it was read for upload`);
      md5.update(md5Buffer.subarray(0, n));
      at += n;
    }
    return { path, size: st.size, md5: md5.digest('base64') };
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes this process's upload folder under `root` (mode 0700), after removing those of processes on
 * this host that no longer run (a backup killed before it could clean up).
 */
function makeUploadDir(root: string): string {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const mine = new RegExp(`^${UPLOAD_DIR}(\\d+)-h${HOST_TAG}-`);
  try {
    for (const name of readdirSync(root)) {
      const pid = mine.exec(name)?.[1];
      if (pid !== undefined && !processRuns(Number(pid))) rmSync(join(root, name), { recursive: true, force: true });
    }
  } catch {
    // a folder that cannot be swept only keeps its leftovers
  }
  return mkdtempSync(join(root, `${UPLOAD_DIR}${process.pid}-h${HOST_TAG}-`));
}

/** The metadata entry of `config` that holds the Object Lock settings. */
const LOCK_META = 'scriptorium-object-lock';
const LIST_PAGE = 1000;
const PACKS = 'packs/';
/** Pack sizes kept from GET answers for {@link S3Store.stat}. */
const KNOWN_SIZES = 256;
/** Bytes of ranged reads between two collections of their spent socket buffers (see getPieces). */
const COLLECT_READ_BYTES = 16 << 20;

/**
 * A {@link Store} in a bucket under a key prefix. `put` is atomic (S3 puts are) and durable once
 * acknowledged. Every request goes through a limit of `connections` at once and a retry loop with
 * full-jitter exponential backoff (5xx, 408, 429, SlowDown, resets, timeouts, bodies cut short), and is
 * counted by kind. Reads are bounded: an object longer than `maxBytes` is refused from its length before
 * its body is read, and a body longer or shorter than its announced length is never returned.
 *
 * @example
 * ```ts
 * const store = await S3Store.open('s3://backups/app', { endpoint: 'http://127.0.0.1:9000' });
 * await store.put('config', Buffer.from('{}'));
 * await store.close();
 * ```
 */
export class S3Store implements Store {
  readonly location: string;
  readonly capabilities: S3Capabilities;
  readonly #sdk: Sdk;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #immutable: readonly string[];
  readonly #retry: RetryPolicy;
  readonly #timeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #counts: Record<S3RequestKind, number> = { GET: 0, PUT: 0, HEAD: 0, LIST: 0, DELETE: 0 };
  #retries = 0;
  #active = 0;
  readonly #waiting: (() => void)[] = [];
  #lock: Promise<ObjectLockSettings | undefined> | undefined;
  readonly #cache: LocalCache | undefined;
  /** Where {@link tempPrefix} makes its folder, and the folder once made. */
  readonly #tempRoot: string;
  #tempDir: string | undefined;
  #tempCount = 0;
  /**
   * The SDK adds no checksum of its own (checksums only when required, as on a custom endpoint), so an
   * upload's known SHA-256 can be its signed payload hash (see {@link putFileNew}).
   */
  #payloadHashes: boolean;
  /** Sizes of packs learned from GET answers (see {@link #rememberSize}). */
  readonly #sizes = new Map<string, Promise<number | undefined>>();
  #closed = false;

  private constructor(sdk: Sdk, client: S3Client, location: string, bucket: string, prefix: string, options: S3StoreOptions, connections: number, endpoint: string | undefined, payloadHashes: boolean) {
    this.#sdk = sdk;
    this.#payloadHashes = payloadHashes;
    this.#client = client;
    this.location = location;
    this.#bucket = bucket;
    this.#prefix = prefix;
    this.#immutable = options.immutablePrefixes ?? ['packs/', 'index/', 'snapshots/'];
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#log = options.log ?? (() => undefined);
    this.capabilities = { atomicPut: true, durablePut: true, maxConcurrency: connections, conditionalPut: true, remote: true };
    const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
    if (cacheDir) this.#cache = new LocalCache(cacheDir, `${endpoint ?? 'aws'}\n${bucket}\n${prefix}`);
    this.#tempRoot = cacheDir ? join(cacheDir, 'upload') : tmpdir();
  }

  /**
   * Opens the store for `s3://bucket/prefix`. Loads the SDK, resolves endpoint, region, path style and
   * the checksum setting (on a custom endpoint, checksums only when an operation requires them: several
   * S3-compatible servers reject or mis-store the SDK's default CRC32 `aws-chunked` uploads). Makes no
   * request.
   */
  static async open(location: string, options: S3StoreOptions = {}): Promise<S3Store> {
    const { bucket, prefix } = parseS3Location(location);
    const env = process.env;
    const endpoint = options.endpoint !== undefined ? checkEndpoint(options.endpoint)
      : env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL ? checkEndpoint((env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL)!) : undefined;
    const connections = options.connections ?? DEFAULT_CONNECTIONS;
    if (!Number.isSafeInteger(connections) || connections < 1 || connections > 64) {
      throw new UsageError(`s3: --s3-connections ${connections}: must be a whole number from 1 to 64`);
    }
    const pathStyle = options.pathStyle ?? (endpoint !== undefined && needsPathStyle(endpoint));
    // The SDK warns on every start that its releases from 2027 need Node 22; scriptorium pins a release that runs on 20.
    env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const sdk = await loadSdk();
    const timeoutMs = options.timeoutMs ?? 30_000;
    const agent = { keepAlive: true, maxSockets: connections };
    const checksums = endpoint !== undefined && !env.AWS_REQUEST_CHECKSUM_CALCULATION && !env.AWS_RESPONSE_CHECKSUM_VALIDATION
      ? { requestChecksumCalculation: 'WHEN_REQUIRED' as const, responseChecksumValidation: 'WHEN_REQUIRED' as const } : {};
    const make = (region?: string) => new sdk.S3Client({
      ...(endpoint !== undefined ? { endpoint } : {}),
      ...(region !== undefined ? { region } : {}),
      forcePathStyle: pathStyle,
      maxAttempts: 1, // the store retries, with its own policy and log
      ...checksums,
      requestHandler: {
        requestTimeout: timeoutMs, throwOnRequestTimeout: true, connectionTimeout: Math.min(timeoutMs, 10_000), socketTimeout: timeoutMs,
        httpAgent: new HttpAgent(agent), httpsAgent: new HttpsAgent(agent),
      },
    });
    let client = make(options.region);
    try {
      await client.config.region();
    } catch {
      client.destroy();
      if (endpoint === undefined) {
        throw new UsageError(`s3: ${location}: no region configured`, { hint: 'Set AWS_REGION (or region in your AWS profile), or pass --s3-endpoint for a non-AWS server.' });
      }
      client = make('us-east-1'); // S3-compatible servers take any region; us-east-1 is the conventional one
    }
    return new S3Store(sdk, client, location.replace(/\/+$/, ''), bucket, prefix, options, connections, endpoint, 'requestChecksumCalculation' in checksums);
  }

  /** Requests made so far, by kind (every attempt counts, retries included). */
  requestCounts(): Record<S3RequestKind, number> & { retries: number; cacheHits: number } {
    return { ...this.#counts, retries: this.#retries, cacheHits: this.#cache?.hits ?? 0 };
  }

  #key(key: string): string {
    checkKey(key);
    this.#open();
    return this.#prefix + key;
  }

  #isImmutable(key: string): boolean {
    return this.#immutable.some((p) => key.startsWith(p));
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    await this.#put(key, data);
  }

  /**
   * One PUT with `If-None-Match: *` for any key (the repository's exclusive lock): false when the
   * server answered 412. On a server without conditional puts, a HEAD then a put (not atomic: two
   * racing callers may both get true; the repository's exclusive holders also exclude each other by
   * listing their locks).
   */
  async putIfAbsent(key: string, data: Uint8Array): Promise<boolean> {
    this.#key(key);
    if (this.capabilities.conditionalPut) {
      try {
        return (await this.#put(key, data, true)) === 'created';
      } catch (err) {
        if (this.capabilities.conditionalPut) throw err;
      }
    }
    if (await this.has(key)) return false;
    await this.#put(key, data);
    return true;
  }

  /**
   * For a content-addressed key on a server that honours `If-None-Match`, one conditional PUT: created
   * unless the server answered 412. Otherwise (a mutable key, or no conditional puts) a HEAD, then the put.
   */
  async putNew(key: string, data: Uint8Array): Promise<boolean> {
    this.#key(key);
    if (this.#isImmutable(key) && this.capabilities.conditionalPut) return (await this.#put(key, data)) === 'created';
    const existed = await this.has(key);
    await this.#put(key, data);
    return !existed;
  }

  /**
   * {@link Store.tempPrefix}: a name under a folder of this process's own (mode 0700), made on first use
   * in the cache directory's `upload/` (else the system's temporary folder), where the backup's native
   * packer writes pack files for {@link putFile} to upload. Then no pack file enters this process's
   * memory: as 2 MiB buffers handed over from C, freed in turn, they fragmented glibc's heap (measured:
   * about 11 MB more peak RSS for a backup of 1M rows). The folder goes on {@link close}; folders of
   * processes on this host that no longer run are removed when the next one is made.
   */
  tempPrefix(): string {
    this.#open();
    this.#tempDir ??= makeUploadDir(this.#tempRoot);
    return join(this.#tempDir, `p${this.#tempCount++}-`);
  }

  /** {@link Store.putFile}: {@link putFileNew}, whose answer only a caller that removes what it created needs. */
  async putFile(key: string, path: string): Promise<void> {
    await this.putFileNew(key, path);
  }

  /**
   * {@link Store.putFileNew}: uploads the file at `path` (a file under a {@link tempPrefix}) under `key`,
   * streamed from the disk, with {@link putNew}'s single conditional PUT for a content-addressed key;
   * removes the file afterwards, whether this succeeds or fails.
   */
  async putFileNew(key: string, path: string, sha256?: string): Promise<boolean> {
    // Never upload, nor remove, a file that is not one of this store's temporary files.
    if (this.#tempDir === undefined || dirname(path) !== this.#tempDir || !path.slice(this.#tempDir.length + 1).startsWith('p')) {
      throw new TypeError(`S3Store.putFile: ${path} is not a temporary file of this store`);
    }
    try {
      this.#key(key);
      // Content that the cache keeps (index files, manifests) is small: it goes through put.
      if (CACHED_PREFIXES.some((p) => key.startsWith(p)) || key.startsWith(KEYS) || key === 'config') {
        return await this.putNew(key, await readFile(path));
      }
      // With the content's SHA-256 known, the MD5 is read only if #put finds it needs one.
      const file = uploadFile(path, sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : undefined);
      if (this.#isImmutable(key) && this.capabilities.conditionalPut) return (await this.#put(key, file)) === 'created';
      const existed = await this.has(key);
      await this.#put(key, file);
      return !existed;
    } finally {
      await unlink(path).catch(() => undefined);
    }
  }

  /**
   * Puts `data`; says `created` when a conditional put succeeded, `existed` when it answered 412, and
   * `written` for an unconditional put (which may have replaced an object).
   */
  async #put(key: string, data: Uint8Array | UploadFile, ifAbsent = false): Promise<'created' | 'existed' | 'written'> {
    const full = this.#key(key);
    const file = data instanceof Uint8Array ? undefined : data;
    const body = data instanceof Uint8Array ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : undefined;
    let md5 = file ? file.md5 : createHash('md5').update(body!).digest('base64');
    const payloadHash = file?.sha256;
    const length = file ? file.size : body!.length;
    const immutable = this.#isImmutable(key);
    const lock = immutable ? await this.#lockSettings() : undefined;
    // The config carries the Object Lock settings (set by enableObjectLock, or read with the config before).
    const meta = key === 'config' && this.#lock ? await this.#lock : undefined;
    const outcome = await this.#request('PUT', 'put', key, async (): Promise<'created' | 'existed' | 'written'> => {
      // A conditional put found unsupported (501) on an earlier attempt: never retried unconditionally.
      if (ifAbsent && !this.capabilities.conditionalPut) throw new ScriptoriumError('E_UNSUPPORTED', `s3: ${this.location} does not support conditional puts`);
      const conditional = (immutable || ifAbsent) && this.capabilities.conditionalPut;
      // A file whose SHA-256 is known is signed with it as the payload hash, which the server checks the
      // upload against (AWS S3 answers XAmzContentSHA256Mismatch, as servers that verify SigV4 do), so a
      // file damaged on the disk since it was hashed is refused: no MD5 pass over it on this thread.
      // Unless the SDK adds checksums of its own (AWS's endpoint), Object Lock retention asks for a
      // Content-MD5, or the bucket did (below).
      const signed = payloadHash !== undefined && this.#payloadHashes && !lock;
      if (!signed && md5 === undefined) md5 = uploadFile(file!.path).md5;
      // A file is read afresh for every attempt, in small pieces, straight to the socket.
      const stream = file && file.size > 0 ? createReadStream(file.path, { highWaterMark: UPLOAD_PIECE, end: file.size - 1 }) : undefined;
      try {
        const command = new this.#sdk.PutObjectCommand({
          Bucket: this.#bucket, Key: full, Body: stream ?? body ?? Buffer.alloc(0), ContentLength: length,
          ...(!signed ? { ContentMD5: md5 } : {}),
          ...(conditional ? { IfNoneMatch: '*' } : {}),
          ...(meta ? { Metadata: { [LOCK_META]: `${meta.mode};${meta.days}` } } : {}),
          ...(lock ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: new Date(Date.now() + lock.days * 86_400_000) } : {}),
        });
        if (signed) {
          // The signer signs a payload hash it finds in the headers as it is (else a stream's is UNSIGNED-PAYLOAD).
          command.middlewareStack.add((next) => (args) => {
            (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = payloadHash;
            return next(args);
          }, { step: 'build', name: 'scriptorium-payload-hash' });
        }
        await this.#client.send(command);
        return conditional ? 'created' : 'written';
      } catch (err) {
        const status = statusOf(err);
        // The object is there already: named by its content, it is this content (every read checks that).
        if (conditional && (status === 412 || codeOf(err) === 'PreconditionFailed')) return 'existed';
        // A conditional write still in flight elsewhere: the other writer's object will be the same.
        if (conditional && status === 409 && codeOf(err) === 'ConditionalRequestConflict') throw new TransientError('conditional put conflict');
        // A bucket with a default Object Lock retention (set outside scriptorium) wants a Content-MD5 on
        // every upload: from now on each carries one, this one on its next attempt.
        if (signed && status === 400 && (codeOf(err) === 'MissingUploadObjectWithObjectLockHeaders' || /content-md5/i.test(String((err as Error).message)))) {
          this.#payloadHashes = false;
          this.#log(`s3: ${this.location}: the bucket asks for a Content-MD5 with every upload (${codeOf(err)}); uploads carry one from now on`);
          throw new TransientError('the bucket asks for a Content-MD5');
        }
        if (conditional && status === 501) {
          this.capabilities.conditionalPut = false;
          this.#log(`s3: ${this.location}: the server does not implement If-None-Match on put; immutable objects are now written unconditionally`);
          throw new TransientError('If-None-Match not implemented');
        }
        throw err;
      } finally {
        stream?.destroy();
      }
    });
    if (!body) return outcome; // files are packs, which are not cached
    // What this process wrote, it need not download again (not after a 412: that content is someone else's).
    if (outcome !== 'existed' && this.#cache && CACHED_PREFIXES.some((p) => key.startsWith(p))) await this.#cache.put(key, Buffer.from(body));
    if (key === 'config' && this.#cache) await this.#cache.put(CONFIG_CACHE_KEY, configEntry(body, meta));
    if (key.startsWith(KEYS) && this.#cache) {
      await this.#cache.delete(KEYS_LIST_CACHE_KEY); // the listing changed: the next one is fresh
      await this.#cache.put(key, Buffer.from(body));
    }
    return outcome;
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    const full = this.#key(key);
    const { maxBytes } = options;
    if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) throw new TypeError(`S3Store.get: invalid maxBytes ${maxBytes}`);
    if (key === 'config' && this.#cache) return this.#getConfig(full, options, this.#cache);
    const cacheable = CACHED_PREFIXES.some((p) => key.startsWith(p)) || key.startsWith(KEYS);
    const cache = this.#cache && cacheable ? this.#cache : undefined;
    const fromCache = !options.fresh && (!key.startsWith(KEYS) || options.cached === true);
    if (cache) {
      const cached = fromCache ? await cache.get(key, maxBytes) : undefined;
      if (cached) return cached;
      const data = await this.#get(key, full, maxBytes);
      await cache.put(key, data);
      return data;
    }
    return this.#get(key, full, maxBytes);
  }

  /**
   * `config`, with its Object Lock settings: from the cache when the caller accepts that
   * (`options.cached`, and checks the content itself), else from the server, refreshing the cache.
   */
  async #getConfig(full: string, options: GetOptions, cache: LocalCache): Promise<Buffer> {
    if (options.cached && !options.fresh) {
      const entry = await cache.get(CONFIG_CACHE_KEY, (options.maxBytes ?? MAX_CONFIG_ENTRY) + 64);
      const parsed = entry && parseConfigEntry(entry, this.location);
      if (parsed && (options.maxBytes === undefined || parsed.data.length <= options.maxBytes)) {
        this.#lock = Promise.resolve(parsed.lock);
        return parsed.data;
      }
    }
    const data = await this.#get('config', full, options.maxBytes);
    await cache.put(CONFIG_CACHE_KEY, configEntry(data, await this.#lock));
    return data;
  }

  async #get(key: string, full: string, maxBytes: number | undefined): Promise<Buffer> {
    let previousMismatch: string | undefined;
    let sized: (size: number | undefined) => void = () => undefined;
    if (key.startsWith(PACKS)) this.#rememberSize(key, new Promise((resolve) => { sized = resolve; }));
    try {
      return await this.#request('GET', 'get', key, async () => {
        const response = await this.#client.send(new this.#sdk.GetObjectCommand({ Bucket: this.#bucket, Key: full }));
        const body = response.Body as Readable | undefined;
        const length = response.ContentLength;
        if (length === undefined || !Number.isSafeInteger(length) || length < 0) {
          body?.destroy();
          throw new TransientError('answer without a Content-Length');
        }
        sized(length);
        if (maxBytes !== undefined && length > maxBytes) {
          body?.destroy();
          throw tooLarge(this.location, key, length, maxBytes);
        }
        const data = await this.#readBody(body, length);
        // A single-part upload's ETag is the MD5 of its content (unless the server encrypts with KMS or a
        // customer key): a 200 with another body is retried. If the same body comes back again, the server's
        // ETags are not MD5s (some servers): the bytes are returned, and checked against their name by the caller.
        const etag = /^"?([0-9a-f]{32})"?$/.exec(response.ETag ?? '')?.[1];
        if (etag !== undefined && !response.SSECustomerAlgorithm && !String(response.ServerSideEncryption ?? '').startsWith('aws:kms')) {
          const md5 = createHash('md5').update(data).digest('hex');
          if (md5 !== etag && md5 !== previousMismatch) {
            previousMismatch = md5;
            throw new TransientError('body does not match its ETag');
          }
        }
        if (key === 'config') this.#lock = Promise.resolve(parseLockSettings(response.Metadata?.[LOCK_META], this.location));
        return data;
      });
    } finally {
      sized(undefined); // no answer with a length: stat asks the server (a no-op once resolved)
    }
  }

  /**
   * Keeps the size of pack `key` that a GET learns from its answer's headers, bounded to the last
   * {@link KNOWN_SIZES}: restore asks a pack's size (to read a huge one in pieces) just as its
   * read-ahead downloads it, and {@link stat} then waits for that answer instead of sending a HEAD.
   */
  #rememberSize(key: string, size: Promise<number | undefined>): void {
    this.#sizes.delete(key);
    this.#sizes.set(key, size);
    if (this.#sizes.size > KNOWN_SIZES) this.#sizes.delete(this.#sizes.keys().next().value as string);
  }

  /** Reads exactly `length` bytes of `body`: more or fewer is a transient failure; no progress for the timeout aborts. */
  async #readBody(body: Readable | undefined, length: number, into?: Buffer): Promise<Buffer> {
    if (body === undefined) {
      if (length === 0) return Buffer.alloc(0);
      throw new TransientError('answer without a body');
    }
    const data = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let filled = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => body.destroy(new TransientError(`no data for ${this.#timeoutMs} ms`)), this.#timeoutMs);
    };
    try {
      arm();
      for await (const piece of body as AsyncIterable<Buffer>) {
        if (filled + piece.length > length) throw new TransientError(`body longer than its Content-Length ${length}`);
        piece.copy(data, filled);
        filled += piece.length;
        arm();
      }
    } catch (err) {
      body.destroy();
      throw err instanceof TransientError ? err : new TransientError(`body cut short (${codeOf(err)})`);
    } finally {
      clearTimeout(timer);
    }
    if (filled !== length) throw new TransientError(`body cut short: ${filled} of ${length} bytes`);
    return data;
  }

  /**
   * {@link Store.getPieces}: ranged GETs (`Range: bytes=a-b`) of at most `pieceBytes` each (default
   * 4 MiB), read into one buffer reused for every piece, so that memory stays at one piece whatever the
   * object's size. The first answer's `Content-Range` gives the object's size, checked against
   * `maxBytes` before its body is read; every later range is asked for with `If-Match` on the first
   * answer's ETag and must give the same size, so that an object replaced or cut while it is read is
   * E_CORRUPT, never a mix of two. Each range is retried on its own as a get is. Index files, manifests
   * and the other cached objects are small: they come whole from {@link get} (and its cache), in pieces.
   */
  async *getPieces(key: string, options: GetPiecesOptions = {}): AsyncGenerator<Buffer> {
    const full = this.#key(key);
    const { maxBytes, pieceBytes } = piecesOptions('S3Store.getPieces', options);
    if (key === 'config' || key.startsWith(KEYS) || CACHED_PREFIXES.some((p) => key.startsWith(p))) {
      const data = await this.get(key, options);
      for (let at = 0; at < data.length; at += pieceBytes) yield data.subarray(at, at + pieceBytes);
      return;
    }
    let size: number | undefined;
    let etag: string | undefined;
    let piece: Buffer | undefined;
    let sinceCollect = 0;
    for (let at = 0; size === undefined || at < size;) {
      const first = size === undefined;
      const last = at + pieceBytes - 1;
      const got = await this.#request('GET', 'get', key, async () => {
        let response;
        try {
          response = await this.#client.send(new this.#sdk.GetObjectCommand({
            Bucket: this.#bucket, Key: full, Range: `bytes=${at}-${last}`, ...(etag !== undefined ? { IfMatch: etag } : {}),
          }));
        } catch (err) {
          // A range from 0 of an empty object is not satisfiable: the object is empty.
          if (first && statusOf(err) === 416) return { total: 0, length: 0, tag: undefined, data: Buffer.alloc(0) };
          // Replaced (If-Match failed) or removed since the first range: never a mix of two objects.
          if (!first && (statusOf(err) === 412 || statusOf(err) === 404 || codeOf(err) === 'PreconditionFailed')) throw changedWhileRead(this.location, key);
          throw err;
        }
        const body = response.Body as Readable | undefined;
        const length = response.ContentLength;
        // `bytes a-b/total`; an answer without it (a 200 with the whole object) is read only when it fits a piece.
        const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.ContentRange ?? '');
        const total = range ? Number(range[3]) : length;
        if (length === undefined || !Number.isSafeInteger(length) || length < 0 || total === undefined || !Number.isSafeInteger(total)) {
          body?.destroy();
          throw new TransientError('answer without a Content-Length');
        }
        if (maxBytes !== undefined && total > maxBytes) {
          body?.destroy();
          throw tooLarge(this.location, key, total, maxBytes);
        }
        const expected = Math.min(pieceBytes, Math.max(0, (size ?? total) - at));
        if ((range ? Number(range[1]) !== at || Number(range[2]) !== at + length - 1 : at !== 0 || length !== total) || length !== expected) {
          body?.destroy();
          if (!range && total > pieceBytes) {
            throw new ScriptoriumError('E_UNSUPPORTED', `s3: get ${key}: the server ignored the Range header (${this.location})`, {
              hint: 'The server does not serve byte ranges, which reading a large pack in pieces needs; use an S3-compatible server that does.',
            });
          }
          throw new TransientError(`answer for bytes ${at}-${last} of ${size ?? total} gave ${range ? response.ContentRange : `${length} bytes`}`);
        }
        if (size !== undefined && total !== size) {
          body?.destroy();
          throw changedWhileRead(this.location, key);
        }
        piece ??= Buffer.allocUnsafe(Math.max(1, Math.min(pieceBytes, total)));
        return { total, length, tag: response.ETag, data: await this.#readBody(body, length, piece) };
      });
      if (size === undefined) {
        size = got.total;
        etag = got.tag;
        if (key.startsWith(PACKS)) this.#rememberSize(key, Promise.resolve(size));
      }
      at += got.length;
      // Each answer's body came in the socket's own small buffers, copied into `piece`: garbage the size
      // of what was read, which V8 frees only once its external memory has grown far enough (a 40 MB
      // pack read twice by restore left ~50 MB of it at the peak). Collected every COLLECT_READ_BYTES.
      sinceCollect += got.length;
      if (sinceCollect >= COLLECT_READ_BYTES) {
        sinceCollect = 0;
        collectSoon();
      }
      if (got.length > 0) yield got.data;
    }
  }

  async has(key: string): Promise<boolean> {
    const full = this.#key(key);
    try {
      await this.#head('has', key, full);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /**
   * One HEAD, unless a GET of the pack `key` (running, or among the last few) gave its size: packs are
   * immutable, so that size is the object's (see {@link #rememberSize}).
   */
  async stat(key: string): Promise<StoreEntry> {
    const full = this.#key(key);
    const known = await this.#sizes.get(key);
    if (known !== undefined) return { key, size: known };
    const head = await this.#head('stat', key, full);
    return { key, size: head.ContentLength ?? 0 };
  }

  #head(op: string, key: string, full: string) {
    return this.#request('HEAD', op, key, () => this.#client.send(new this.#sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: full })));
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<StoreEntry> {
    checkPrefix(prefix);
    this.#open();
    const cache = prefix === KEYS ? this.#cache : undefined;
    if (cache && options.cached) {
      const entry = await cache.get(KEYS_LIST_CACHE_KEY, 1 << 16);
      const keys = entry?.toString('utf8').split('\n').filter((k) => k !== '');
      if (keys && keys.every((k) => k.startsWith(KEYS) && validKey(k))) {
        for (const key of keys) yield { key, size: 0 };
        return;
      }
    }
    const listed: string[] = [];
    yield* this.#list(prefix, options, listed);
    if (cache) await cache.put(KEYS_LIST_CACHE_KEY, Buffer.from(listed.map((k) => `${k}\n`).join('')));
  }

  async *#list(prefix: string, options: ListOptions, listed: string[]): AsyncIterable<StoreEntry> {
    let token: string | undefined;
    do {
      const page = await this.#request('LIST', 'list', prefix, () => this.#client.send(new this.#sdk.ListObjectsV2Command({
        Bucket: this.#bucket, Prefix: this.#prefix + prefix, MaxKeys: LIST_PAGE, ...(token ? { ContinuationToken: token } : {}),
      })));
      for (const object of page.Contents ?? []) {
        const full = object.Key ?? '';
        if (!full.startsWith(this.#prefix)) continue;
        const key = full.slice(this.#prefix.length);
        if (!validKey(key)) {
          options.strays?.push(key);
          continue;
        }
        listed.push(key);
        yield { key, size: object.Size ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    const full = this.#key(key);
    await this.#cache?.delete(key);
    if (key.startsWith(KEYS)) await this.#cache?.delete(KEYS_LIST_CACHE_KEY);
    if (this.#isImmutable(key) && (await this.#lockSettings())) {
      const until = await this.heldUntil(key);
      if (until !== undefined && until.getTime() > Date.now()) {
        throw new ScriptoriumError('E_LOCKED', `s3: delete ${key}: held by Object Lock until ${until.toISOString()} (${this.location})`, {
          hint: 'Objects under Object Lock cannot be deleted before their retention ends; try again after that date.',
        });
      }
    }
    await this.#request('DELETE', 'delete', key, async () => {
      try {
        await this.#client.send(new this.#sdk.DeleteObjectCommand({ Bucket: this.#bucket, Key: full }));
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
      }
    });
  }

  /**
   * When `key` is retained by S3 Object Lock, until when (one HEAD request, only on a repository with
   * Object Lock); undefined when it is not (or does not exist).
   */
  async heldUntil(key: string): Promise<Date | undefined> {
    this.#key(key);
    if (!(await this.#lockSettings())) return undefined; // no Object Lock on this repository: no request
    try {
      const head = await this.#head('stat', key, this.#key(key));
      return head.ObjectLockRetainUntilDate ? new Date(head.ObjectLockRetainUntilDate) : undefined;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * The repository's Object Lock settings: from the `config` read when the repository was opened, else
   * from one HEAD of `config` when first needed.
   */
  objectLock(): Promise<ObjectLockSettings | undefined> {
    return this.#lockSettings();
  }

  #lockSettings(): Promise<ObjectLockSettings | undefined> {
    this.#lock ??= this.#request('HEAD', 'stat', 'config', async () => {
      try {
        const head = await this.#client.send(new this.#sdk.HeadObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + 'config' }));
        return parseLockSettings(head.Metadata?.[LOCK_META], this.location);
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    });
    this.#lock.catch(() => { this.#lock = undefined; });
    return this.#lock;
  }

  /**
   * Turns on Object Lock for the repository about to be created here: the `config` put next carries the
   * settings, and every immutable object written is retained `days` days from its upload. Checks first
   * that the bucket has Object Lock enabled (only a versioned bucket can), and refuses otherwise. For
   * `init --object-lock DAYS`, before the repository is created.
   */
  async enableObjectLock(days: number, mode: ObjectLockSettings['mode'] = 'COMPLIANCE'): Promise<void> {
    if (!Number.isSafeInteger(days) || days < 1 || days > 36_500) throw new UsageError(`s3: --object-lock ${days}: must be a whole number of days from 1 to 36500`);
    this.#open();
    const config = await this.#request('GET', 'object-lock', this.#bucket, async () => {
      try {
        return await this.#client.send(new this.#sdk.GetObjectLockConfigurationCommand({ Bucket: this.#bucket }));
      } catch (err) {
        if (codeOf(err) === 'ObjectLockConfigurationNotFoundError' || statusOf(err) === 404) return undefined;
        throw err;
      }
    });
    if (config?.ObjectLockConfiguration?.ObjectLockEnabled !== 'Enabled') {
      throw new UsageError(`s3: bucket ${this.#bucket} does not have Object Lock enabled`, {
        hint: 'Create the bucket with Object Lock enabled (aws s3api create-bucket --object-lock-enabled-for-bucket), then run init again.',
      });
    }
    this.#lock = Promise.resolve({ days, mode });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
    if (this.#tempDir) rmSync(this.#tempDir, { recursive: true, force: true });
  }

  #open(): void {
    if (this.#closed) throw new TypeError(`${this.location}: store is closed`);
  }

  /**
   * Runs one request (`attempt`, which sends it and reads its answer) within the connection limit,
   * retrying what {@link isRetryable} allows with full-jitter backoff until the policy's attempts or
   * its total wait run out; then maps the failure to a ScriptoriumError.
   */
  async #request<T>(kind: S3RequestKind, op: string, key: string, attempt: () => Promise<T>): Promise<T> {
    let waited = 0;
    for (let n = 1; ; n++) {
      await this.#acquire();
      let failure: unknown;
      try {
        this.#counts[kind]++;
        return await attempt();
      } catch (err) {
        failure = err;
      } finally {
        this.#release();
      }
      const wait = backoffMs(this.#retry, n);
      if (!isRetryable(failure) || n >= this.#retry.attempts || waited + wait > this.#retry.totalMs) {
        throw toStoreError(op, key, this.location, failure, n, isRetryable(failure));
      }
      this.#retries++;
      this.#log(`s3: retry ${n}/${this.#retry.attempts - 1} of ${kind} ${key} after ${describeFailure(failure)}: waiting ${wait} ms`);
      waited += wait;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async #acquire(): Promise<void> {
    if (this.#active < this.capabilities.maxConcurrency) {
      this.#active++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else this.#active--;
  }
}

function validKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

/** Parses `MODE;DAYS` from the config's metadata (undefined: no Object Lock). */
function parseLockSettings(value: string | undefined, location: string): ObjectLockSettings | undefined {
  if (value === undefined) return undefined;
  const m = /^(GOVERNANCE|COMPLIANCE);([1-9][0-9]{0,4})$/.exec(value);
  if (!m) {
    throw new ScriptoriumError('E_CORRUPT', `s3: config in ${location} has invalid Object Lock settings in its metadata (${LOCK_META})`, {
      hint: 'Something other than scriptorium wrote the config; restore it from a copy of the repository.',
    });
  }
  return { mode: m[1] as ObjectLockSettings['mode'], days: Number(m[2]) };
}

function changedWhileRead(location: string, key: string): ScriptoriumError {
  return new ScriptoriumError('E_CORRUPT', `s3: get ${key}: changed while it was read in pieces (${location})`, {
    hint: 'Another writer replaced or removed the object meanwhile; what was read of it was not used. Run the command again, and verify the repository.',
  });
}

function tooLarge(location: string, key: string, size: number, maxBytes: number): ScriptoriumError {
  return new ScriptoriumError('E_CORRUPT', `s3: get ${key}: is ${size} bytes, more than the ${maxBytes} such an object can hold (${location})`, {
    hint: 'The object is damaged or was replaced; it was not read. Remove it, or replace it from a copy of the repository.',
  });
}

/** Maps an SDK or network failure to the error the Store contract names; never includes a header, URL query or secret. */
function toStoreError(op: string, key: string, location: string, err: unknown, attempts: number, retryable: boolean): Error {
  if (err instanceof ScriptoriumError || err instanceof TypeError) return err;
  const status = statusOf(err);
  const code = codeOf(err);
  const what = `s3: ${op} ${key}`;
  if (status === 404 && (code === 'NoSuchBucket')) {
    return new ScriptoriumError('E_NOT_FOUND', `${what}: the bucket does not exist (${location})`, { hint: 'Create the bucket first (scriptorium does not create buckets), or check --repo and --s3-endpoint.', cause: err });
  }
  if (status === 404 || code === 'NoSuchKey' || code === 'NotFound') return new NotFoundError(`${what}: not found in ${location}`, { cause: err });
  if (code === 'CredentialsProviderError' || /credential/i.test((err as Error)?.message ?? '') && status === undefined) {
    return new UsageError(`${what}: no AWS credentials found`, { hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; scriptorium takes no credentials on the command line.', cause: err });
  }
  if (status === 403 || status === 401) {
    return new ScriptoriumError('E_IO', `${what}: access denied (${status} ${code}) by ${location}`, { hint: 'Check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE), the region and the bucket policy.', cause: err });
  }
  const after = retryable ? ` after ${attempts} attempt${attempts === 1 ? '' : 's'}` : '';
  return new ScriptoriumError('E_IO', `${what}: ${err instanceof TransientError ? err.message : describeFailure(err)}${after} (${location})`, {
    hint: retryable ? 'The server or the network kept failing; nothing incomplete was kept. Try again later, or check --s3-endpoint.' : 'Check --repo, --s3-endpoint and the server.',
    cause: err,
  });
}
