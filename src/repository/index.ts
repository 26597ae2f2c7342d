/** The backup repository: public API. */
export { backup, type BackupOptions } from './backup.js';
export { restore, type RestoreOptions, type RestoreResult } from './restore.js';
export { verify, type VerifyOptions, type VerifyReport } from './verify.js';
export { forget, type ForgetOptions, type ForgetResult } from './forget.js';
export { prune, type PruneOptions, type PruneResult } from './prune.js';
export { unlock, type UnlockOptions, type UnlockResult, type LockReport } from './unlock.js';
export { isObjectKey, findStrays } from './objects.js';
export { diff, type DiffOptions, type SnapshotDiff, type TableDiff } from './diff.js';
export { init, snapshots, type SnapshotSummary } from './operations.js';
export { Repository, type OpenOptions, type RepositoryLocation } from './repository.js';
export { applyPolicy, type RetentionPolicy } from './policy.js';
export { FORMAT_VERSION, type RepositoryConfig, type RepositorySettings } from './config.js';
export type { Snapshot, SnapshotManifest, TableEntry, SnapshotStats } from './manifest.js';
export { RepositoryIntegrityError, LockedError, type Problem } from './errors.js';
export type { RowSource } from './source.js';
export type { CompressionCodec } from './compression.js';
export { keyList, keyAdd, keyRemove, keyPasswd } from './crypto/key-operations.js';
export type { RepositoryKeys, KeyInfo, EncryptionSettings } from './crypto/repository-crypto.js';
