/**
 * The performance monitor: measures operations (duration, rows and bytes per second, peak memory),
 * checks them against targets, keeps a history file across restarts and renders reports.
 *
 * @example
 * import { loadConfig, Monitor, formatTargetsLine } from './monitor/index.js';
 * const monitor = Monitor.fromConfig(loadConfig());
 * const op = monitor.start({ kind: 'export', source: 'app.db', target: 'app.jsonl' });
 * // ... op.progress({ rowsDone, bytesIn, bytesOut }) ...
 * console.log(formatTargetsLine(monitor.check(op.complete())));
 */
export { Monitor, type MonitorOptions } from './monitor.js';
export {
  MonitoredOperation,
  errorCode,
  type CompleteDetails,
  type ProgressUpdate,
  type StartOptions,
} from './monitored-operation.js';
export type { EventStreamOptions } from './event-hub.js';
export { LINE_PREFIX, MAX_LINE_BYTES, decodeRecordLine, encodeRecord, type OperationRecord } from './operation-record.js';
export {
  HistoryStore,
  type ArchiveEntry,
  type CompactResult,
  type HistoryReadResult,
  type HistoryStoreOptions,
} from './history-store.js';
export { tryLock, type LockOptions, type ReleaseLock } from './file-lock.js';
export {
  DEFAULT_TARGETS,
  TARGET_NAMES,
  applyOverrides,
  meetsTargets,
  targetsFor,
  type TargetCheck,
  type TargetName,
  type TargetOverrides,
  type TargetTable,
  type Targets,
  type TargetsResult,
} from './targets.js';
export {
  CONFIG_FILE_NAME,
  DEFAULT_HISTORY_PATH,
  DEFAULT_MAX_ENTRIES,
  defaultConfig,
  loadConfig,
  parseConfig,
  type LoadConfigOptions,
  type MonitorConfig,
} from './config.js';
export { REDACTED, redact } from './redact.js';
export { computeTrend, renderReport, type ReportOptions, type Trend } from './report.js';
export { groupByKind, median, percentile, summarizeKind, type KindSummary } from './stats.js';
export {
  formatBytes,
  formatDuration,
  formatHistoryTable,
  formatInteger,
  formatMB,
  formatRowsPerSecond,
  formatTargetsLine,
} from './format.js';
export { MemorySampler, MemoryPeaks, sampleMemory, type MemorySample } from './memory-sampler.js';
