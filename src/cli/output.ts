import { createRequire } from 'node:module';
import type { OperationEvent } from '../core/events.js';
import { fromSqliteError, isScriptoriumError } from '../core/errors.js';
import { redact } from '../monitor/redact.js';

/** Global output flags shared by every command. */
export interface OutputOptions {
  quiet?: boolean;
  json?: boolean;
  debug?: boolean;
}

/** Human-readable byte size. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/**
 * Shows an operation's progress on stderr: a bar on a terminal, a plain line every few seconds when
 * piped, nothing with --quiet or --json.
 */
export function progressListener(opts: OutputOptions, stream: NodeJS.WriteStream = process.stderr): {
  listener: (e: OperationEvent) => void;
  stop: () => void;
} {
  if (opts.quiet || opts.json) return { listener: () => {}, stop: () => {} };
  if (stream.isTTY) {
    // Loaded only for a terminal: piped and quiet runs start faster without it.
    const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
    const bar = new cliProgress.SingleBar(
      { stream, format: ' {bar} {percentage}% | {value}/{total} rows | {rate} rows/s | {table} | ETA {eta_formatted}', hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      listener: (e) => {
        if (e.type === 'started') {
          bar.start(e.totalRows ?? 0, 0, { rate: '0', table: '' });
          started = true;
        } else if (e.type === 'progress' && started) {
          if (e.rowsTotal !== undefined && e.rowsTotal !== bar.getTotal()) bar.setTotal(e.rowsTotal);
          bar.update(e.rowsDone, { rate: formatCount(e.rowsPerSecond), table: e.table ?? e.phase });
        }
      },
      stop: () => {
        if (started) bar.stop();
      },
    };
  }
  let last = 0;
  return {
    listener: (e) => {
      if (e.type !== 'progress') return;
      const now = Date.now();
      if (now - last < 2000) return;
      last = now;
      const total = e.rowsTotal ? ` of ${formatCount(e.rowsTotal)}` : '';
      const eta = e.etaSeconds !== undefined ? `, ETA ${e.etaSeconds.toFixed(0)} s` : '';
      stream.write(`${e.kind}: ${e.phase}${e.table ? ` ${e.table}` : ''}: ${formatCount(e.rowsDone)}${total} rows, ${formatBytes(e.bytesOut || e.bytesIn)}, ${formatCount(e.rowsPerSecond)} rows/s${eta}\n`);
    },
    stop: () => {},
  };
}

/** Prints an error the way the CLI always does: code, message, hint; a stack only with --debug. */
export function printError(err: unknown, debug = false, stream: NodeJS.WriteStream = process.stderr): number {
  err = fromSqliteError(err) ?? err;
  if (isScriptoriumError(err)) {
    // Messages may quote a location as given: a password in it never reaches the terminal.
    stream.write(`scriptorium: error ${err.code}: ${redact(err.message)}\n`);
    if (err.hint) stream.write(`  hint: ${redact(err.hint)}\n`);
    if (debug && err.stack) stream.write(`${err.stack}\n`);
    return err.code === 'E_USAGE' || err.code === 'E_UNKNOWN_FORMAT' || err.code === 'E_UNKNOWN_COMPRESSION' ? 2 : 1;
  }
  const e = err as Error & { code?: string };
  stream.write(`scriptorium: error ${e.code ?? 'E_INTERNAL'}: ${redact(e.message ?? String(err))}\n`);
  stream.write(debug && e.stack ? `${e.stack}\n` : '  hint: this looks like a bug; run again with --debug for details.\n');
  return 1;
}
