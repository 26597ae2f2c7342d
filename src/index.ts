/**
 * scriptorium: backup, verification and restore for application databases.
 *
 * @example
 * import { exportTo, importFrom } from 'scriptorium';
 * const out = await exportTo('app.db', { format: 'ndjson', output: 'app.ndjson.zst', compress: 'zstd' });
 * await importFrom(out.path, { into: 'copy.db' });
 */
export { exportTo, parseFormat, defaultExportPath, type ExportOptions, type ExportResult } from './export.js';
export { importFrom, type ImportOptions, type ImportResult } from './import.js';
export { compareDatabases } from './engines/sqlite/compare.js';
export { SqliteSource } from './engines/sqlite/sqlite-source.js';
export { SqliteTarget } from './engines/sqlite/sqlite-target.js';
export { ENGINES, resolveLocation, engineOf, parseEngine } from './engines/registry.js';
export type { Engine, EngineName, EngineCapabilities, EngineSource, EngineTarget, DatabaseLocation } from './engines/engine.js';
export { createDemoDatabase, demoRowCounts } from './demo/demo-data.js';
export { ScriptoriumError, UsageError, NotFoundError, IntegrityError, AuthError, isScriptoriumError, type ErrorCode } from './core/errors.js';
export type { OperationEvent, OperationKind, EventListener } from './core/events.js';
export type { DatabaseSchema, TableSchema, ColumnSchema, SchemaObject, DatabaseMeta, PostgresSchema, PostgresStatement } from './core/schema.js';
export type { RowEncoding, TableDigest } from './core/encoding.js';
export type { FormatName } from './formats/format.js';
export type { CodecName } from './codecs/codec.js';
export { X25519Identity, X25519Recipient, parseIdentityFile, parseRecipientsFile } from './codecs/age-keys.js';
export type { AgeEncryption } from './codecs/age-writer.js';
export type { AgeKeys, AgeKind } from './codecs/age-reader.js';
export { readPassphrase, type PassphraseOptions } from './core/passphrase.js';
export * from './repository/index.js';
export * from './stores/index.js';
export {
  Monitor,
  MonitoredOperation,
  HistoryStore,
  meetsTargets,
  targetsFor,
  loadConfig,
  renderReport,
  redact,
  DEFAULT_TARGETS,
  type MonitorOptions,
  type OperationRecord,
  type TargetsResult,
  type Targets,
  type MonitorConfig,
} from './monitor/index.js';
