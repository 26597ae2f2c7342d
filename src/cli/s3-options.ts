/**
 * The CLI's repository-location options for S3: `--s3-endpoint`, `--s3-path-style`, `--s3-connections`,
 * and the stores they configure. Credentials are deliberately not an option (environment, profile or
 * instance metadata only).
 */
import type { Command } from 'commander';
import { defaultStores, type StoreRegistry } from '../stores/registry.js';
import type { S3RequestKind, S3StoreOptions } from '../stores/s3-store.js';
import type { Store } from '../stores/store.js';
import { wholeNumber } from './options.js';

/** The parsed S3 flags of a repository command. */
export interface S3Flags {
  s3Endpoint?: string;
  s3PathStyle?: boolean;
  s3Connections?: number;
  debug?: boolean;
}

/** Requests an S3 repository took, by kind, as `--json` and the history report them. */
export type RequestCounts = Record<S3RequestKind, number> & { retries: number; total: number; cacheHits: number };

/** Adds the S3 flags to a repository command. */
export function addS3Options(command: Command): Command {
  return command
    .option('--s3-endpoint <url>', 'S3-compatible server (MinIO, R2, B2, ...); default: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS')
    .option('--s3-path-style', 'address buckets as endpoint/bucket (default for IP and localhost endpoints)')
    .option('--s3-connections <n>', 'parallel S3 requests (default 8)', wholeNumber);
}

/**
 * Store settings from the flags and the environment (`SCRIPTORIUM_S3_TIMEOUT_MS`,
 * `SCRIPTORIUM_S3_RETRY_ATTEMPTS`, `SCRIPTORIUM_S3_RETRY_BASE_MS` tune timeouts and retries), with
 * retries logged to stderr under `--debug`.
 */
export function s3StoreOptions(o: S3Flags, env: NodeJS.ProcessEnv = process.env): S3StoreOptions {
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  };
  const pathStyleEnv = env.SCRIPTORIUM_S3_PATH_STYLE;
  const retry = {
    ...(num('SCRIPTORIUM_S3_RETRY_ATTEMPTS') !== undefined ? { attempts: Math.max(1, Math.floor(num('SCRIPTORIUM_S3_RETRY_ATTEMPTS')!)) } : {}),
    ...(num('SCRIPTORIUM_S3_RETRY_BASE_MS') !== undefined ? { baseMs: num('SCRIPTORIUM_S3_RETRY_BASE_MS')! } : {}),
  };
  return {
    ...(o.s3Endpoint !== undefined ? { endpoint: o.s3Endpoint } : {}),
    ...(o.s3PathStyle ? { pathStyle: true } : pathStyleEnv === '1' || pathStyleEnv === 'true' ? { pathStyle: true } : {}),
    ...(o.s3Connections !== undefined ? { connections: o.s3Connections } : {}),
    ...(num('SCRIPTORIUM_S3_TIMEOUT_MS') !== undefined ? { timeoutMs: num('SCRIPTORIUM_S3_TIMEOUT_MS')! } : {}),
    retry,
    ...(o.debug ? { log: (line: string) => process.stderr.write(`scriptorium: debug: ${line}\n`) } : {}),
  };
}

/** A store registry for one command, remembering the stores it opened (for their request counts). */
export class CommandStores {
  readonly registry: StoreRegistry;
  readonly #opened: Store[] = [];

  constructor(o: S3Flags) {
    this.registry = defaultStores({ s3: s3StoreOptions(o), onOpen: (store) => this.#opened.push(store) });
  }

  /** The requests the command's S3 stores made, summed by kind; undefined when it opened none. */
  requests(): RequestCounts | undefined {
    let sum: RequestCounts | undefined;
    for (const store of this.#opened) {
      const counts = (store as { requestCounts?: () => Record<S3RequestKind, number> & { retries: number; cacheHits: number } }).requestCounts?.();
      if (!counts) continue;
      sum ??= { GET: 0, PUT: 0, HEAD: 0, LIST: 0, DELETE: 0, retries: 0, total: 0, cacheHits: 0 };
      for (const kind of ['GET', 'PUT', 'HEAD', 'LIST', 'DELETE'] as const) {
        sum[kind] += counts[kind];
        sum.total += counts[kind];
      }
      sum.retries += counts.retries;
      sum.cacheHits += counts.cacheHits;
    }
    return sum;
  }
}

/**
 * For `init --object-lock DAYS`: opens the S3 store, refuses a prefix that holds a repository already
 * (its settings are never changed), turns Object Lock on for the repository (checking that the bucket
 * has it enabled), then runs `init` on that store.
 */
export async function withObjectLock<T>(location: string, days: number, stores: CommandStores, init: (store: Store) => Promise<T>): Promise<T> {
  const { openStore } = await import('../stores/registry.js');
  const { UsageError } = await import('../core/errors.js');
  const store = await openStore(location, stores.registry);
  try {
    const s3 = store as Store & { enableObjectLock?: (days: number) => Promise<void> };
    if (typeof s3.enableObjectLock !== 'function') {
      throw new UsageError('init: --object-lock needs an s3:// repository', { hint: 'Object Lock is a feature of S3 buckets; a local directory cannot hold objects immutable.' });
    }
    if (await store.has('config')) {
      throw new UsageError(`repository: ${store.location} already holds a repository`, { code: 'E_TARGET_EXISTS', hint: 'Object Lock is chosen at init, for a new repository: use another prefix.' });
    }
    await s3.enableObjectLock(days);
    return await init(store);
  } finally {
    await store.close();
  }
}
