import type { EventListener, OperationEvent } from '../core/events.js';
import { formatTargetsLine, loadConfig, Monitor, type OperationRecord, type TargetsResult } from '../monitor/index.js';
import { LiveProgressWriter, liveDirFor } from '../monitor/live-progress.js';
import { redact } from '../monitor/redact.js';
import { printError, progressListener, type OutputOptions } from './output.js';

/** Peak resident memory of this process so far, in bytes. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** The monitor every CLI operation reports to: targets and history from scriptorium.config.json. */
export function cliMonitor(): Monitor {
  const config = loadConfig({});
  const monitor = Monitor.fromConfig(config, {
    onError: (err) => process.stderr.write(`scriptorium: warning: monitor: ${err instanceof Error ? err.message : String(err)}\n`),
  });
  // Live progress beside the history, for the dashboard (`scriptorium serve`) of any process.
  monitor.on(new LiveProgressWriter(liveDirFor(config.history.path)).listener);
  return monitor;
}

/**
 * Runs one CLI operation: progress on stderr, the monitor recording it (history, peak memory, targets),
 * then either `summary` and the targets line (human) or the result as JSON on stdout. Errors are
 * printed with code and hint and set a non-zero exit status.
 */
export async function runOperation<T extends object>(
  opts: OutputOptions,
  fn: (onEvent: EventListener) => Promise<T>,
  summary: (result: T) => string,
  /** Where summaries go: stderr when stdout carries the data itself (`export -o -`). */
  out: NodeJS.WritableStream = process.stdout,
): Promise<T | undefined> {
  const progress = progressListener(opts);
  let monitor: Monitor | undefined;
  let opId: string | undefined;
  try {
    monitor = cliMonitor();
    const m = monitor;
    const onEvent = (e: OperationEvent): void => {
      if (e.type === 'started') opId ??= e.id;
      if (e.type === 'notice' && !opts.quiet) process.stderr.write(`scriptorium: ${e.message}\n`);
      m.listener(e);
      progress.listener(e);
    };
    const result = await fn(onEvent);
    progress.stop();
    const record = opId ? monitor.record(opId) : undefined;
    const targets = record ? monitor.check(record) : undefined;
    if (opts.json) {
      // Strings in a result may hold a location as given: passwords are removed from every one.
      const shown = { ...result, peakRssBytes: peakRssBytes(), ...(targets ? { targets } : {}) };
      out.write(`${JSON.stringify(shown, (_key, value: unknown) => (typeof value === 'string' ? redact(value) : value), 2)}\n`);
    } else if (!opts.quiet) {
      out.write(`${summary(result)}\n`);
      // Commands without targets (init, snapshots, ...) say nothing about them.
      if (targets && targets.checks.length > 0) process.stderr.write(`${formatTargetsLine(targets)}\n`);
    }
    return result;
  } catch (err) {
    progress.stop();
    process.exitCode = printError(err, opts.debug);
    return undefined;
  } finally {
    monitor?.close();
  }
}

export type { OperationRecord, TargetsResult };
