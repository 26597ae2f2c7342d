/** The repository's `config` object: format version, identity, chunking and compression settings. */
import { randomBytes } from 'node:crypto';
import { IntegrityError, UsageError } from '../core/errors.js';
import { checkCompression, CODEC_IDS, type CompressionCodec } from './compression.js';
import { newerVersion, notRepository } from './errors.js';
import type { EncryptionConfig } from './crypto/repository-crypto.js';

/** The repository format this code writes, and the newest it reads (it reads version 1 too). */
export const FORMAT_VERSION = 2;
export const FORMAT_NAME = 'scriptorium-repository';

/** How rows are cut into chunks (see docs/repository-format.md, "Chunking"). */
export interface ChunkerSettings {
  algorithm: 'row-key-v1';
  /** Average chunk size in bytes of row encodings. */
  targetBytes: number;
  /** No chunk ends before it holds this many bytes (unless the table ends). */
  minBytes: number;
  /** A chunk never grows past this many bytes unless one row alone is larger. */
  maxBytes: number;
}

export interface RepositoryConfig {
  format: typeof FORMAT_NAME;
  version: number;
  /** 32 hex digits, random, fixed at init. */
  id: string;
  createdAt: string;
  chunker: ChunkerSettings;
  /** A pack is sealed once its chunks add up to this many (uncompressed) bytes. */
  packBytes: number;
  compression: { codec: CompressionCodec; level?: number };
  /** Version 2, encrypted repositories only (see crypto/). */
  encryption?: EncryptionConfig;
}

/** Options of `init`; everything has a default. */
export interface RepositorySettings {
  compression?: CompressionCodec;
  /** zstd -7..22 (default 3), gzip 1..9 (default 6). */
  compressionLevel?: number;
  /** Average chunk size in bytes (default 576). */
  chunkBytes?: number;
  /** Smallest chunk in bytes (default: half the average). */
  minChunkBytes?: number;
  /** Largest chunk of several rows (default 65536). */
  maxChunkBytes?: number;
  /** Pack size in uncompressed bytes (default 2 MiB). */
  packBytes?: number;
  /**
   * Format version to create (default {@link FORMAT_VERSION}); 1 writes a repository that older
   * versions of scriptorium read (whole 32-byte ids in the index, memory growing with the repository).
   */
  formatVersion?: 1 | 2;
}

export const DEFAULT_SETTINGS = {
  compression: 'zstd',
  // 576 rather than format 1's 512: a chunk costs 8 bytes of index, and at 576 a first snapshot of the
  // demo database is 1.04x `sqlite3 .dump | zstd -3` while 1% scattered updates still cost < 5%
  // (measured: docs/repository-format.md, "Choosing the chunk size").
  chunkBytes: 576,
  maxChunkBytes: 64 * 1024,
  packBytes: 2 * 1024 * 1024,
} as const;

/** A new config from `settings`; throws `UsageError` for values out of range. */
export function createConfig(settings: RepositorySettings = {}): RepositoryConfig {
  const codec = settings.compression ?? DEFAULT_SETTINGS.compression;
  checkCompression(codec, settings.compressionLevel);
  const targetBytes = positive('chunk size', settings.chunkBytes ?? DEFAULT_SETTINGS.chunkBytes, 64, 1 << 24);
  const minBytes = positive('min chunk size', settings.minChunkBytes ?? Math.floor(targetBytes / 2), 0, targetBytes - 1);
  const maxBytes = positive('max chunk size', settings.maxChunkBytes ?? Math.max(DEFAULT_SETTINGS.maxChunkBytes, targetBytes * 4), targetBytes, 1 << 28);
  const packBytes = positive('pack size', settings.packBytes ?? DEFAULT_SETTINGS.packBytes, 1024, 1 << 30);
  return {
    format: FORMAT_NAME,
    version: settings.formatVersion === undefined ? FORMAT_VERSION : positive('format version', settings.formatVersion, 1, FORMAT_VERSION),
    id: randomBytes(16).toString('hex'),
    createdAt: new Date().toISOString(),
    chunker: { algorithm: 'row-key-v1', targetBytes, minBytes, maxBytes },
    packBytes,
    compression: settings.compressionLevel === undefined ? { codec } : { codec, level: settings.compressionLevel },
  };
}

function positive(what: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${what} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/**
 * Parses and checks a stored config: E_NOT_REPOSITORY when it is not one, E_VERSION when it is newer
 * than this code, E_CORRUPT (naming the field) when a setting is missing, mistyped or out of the range
 * `init` allows, so that no reader sizes memory or chunks by a number it did not check.
 */
export function parseConfig(data: Buffer, location: string): RepositoryConfig {
  let config: RepositoryConfig;
  try {
    config = JSON.parse(data.toString('utf8')) as RepositoryConfig;
  } catch (err) {
    throw notRepository(location, err, 'its config file is not JSON: damaged, or not a repository\'s');
  }
  if (config === null || typeof config !== 'object' || config.format !== FORMAT_NAME || !Number.isInteger(config.version)) {
    throw notRepository(location, undefined, `its config file is not a ${FORMAT_NAME} config`);
  }
  if (config.version > FORMAT_VERSION) throw newerVersion(location, config.version, FORMAT_VERSION);
  const chunker = config.chunker as ChunkerSettings | undefined;
  if (chunker === null || typeof chunker !== 'object' || chunker.algorithm !== 'row-key-v1') {
    throw newerVersion(location, config.version, FORMAT_VERSION);
  }
  const problem = configProblem(config);
  if (problem) {
    throw new IntegrityError('E_CORRUPT', `repository: ${location}: config: ${problem}`, {
      hint: 'The config was damaged or edited; restore it from a copy of the repository (it never changes after init).',
    });
  }
  return config;
}

/** The first field of a config (of a known format and version) out of what `init` would write. */
function configProblem(config: RepositoryConfig): string | undefined {
  const int = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
  if (config.version < 1) return `version: ${config.version} is not a format version`;
  if (typeof config.id !== 'string' || !/^[0-9a-f]{32}$/.test(config.id)) return 'id: not 32 hex digits';
  if (typeof config.createdAt !== 'string') return 'createdAt: not a string';
  const e = config.encryption as unknown;
  if (config.version === 1 && e !== undefined) return 'encryption: version 1 repositories are not encrypted';
  if (config.version === 2 && e !== undefined) {
    const enc = e as EncryptionConfig | null;
    if (enc === null || typeof enc !== 'object') return 'encryption: not an object';
    if (enc.mode !== 'passphrase' && enc.mode !== 'recipient') return 'encryption.mode: not passphrase or recipient';
    if (enc.cipher !== 'aes-256-gcm' || enc.frameBytes !== 64 << 10) return 'encryption: unknown cipher or frame size';
    if (enc.mode === 'recipient' && typeof enc.recipient !== 'string') return 'encryption.recipient: missing';
  }
  const { targetBytes, minBytes, maxBytes } = config.chunker;
  if (!int(targetBytes, 64, 1 << 24)) return 'chunker.targetBytes: not an integer from 64 to 16777216';
  if (!int(minBytes, 0, targetBytes - 1)) return 'chunker.minBytes: not an integer below targetBytes';
  if (!int(maxBytes, targetBytes, 1 << 28)) return 'chunker.maxBytes: not an integer from targetBytes to 268435456';
  if (!int(config.packBytes, 1024, 1 << 30)) return 'packBytes: not an integer from 1024 to 1073741824';
  const compression = config.compression as RepositoryConfig['compression'] | undefined;
  if (compression === null || typeof compression !== 'object') return 'compression: not an object';
  // Own keys only: `in` would also accept "toString" and the like.
  if (!Object.hasOwn(CODEC_IDS, compression.codec)) return `compression.codec: unknown codec ${JSON.stringify(compression.codec)}`;
  try {
    checkCompression(compression.codec, compression.level);
  } catch (err) {
    return `compression: ${(err as Error).message}`;
  }
  return undefined;
}
