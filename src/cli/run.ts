import type { EventListener } from '../core/events.js';
import { printError, progressListener, type OutputOptions } from './output.js';

/** Peak resident memory of this process so far, in bytes. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/**
 * Runs one CLI operation: progress on stderr, then either `summary` (human) or the result as JSON on
 * stdout. Errors are printed with code and hint and set a non-zero exit status.
 */
export async function runOperation<T extends object>(
  opts: OutputOptions,
  fn: (onEvent: EventListener) => Promise<T>,
  summary: (result: T) => string,
): Promise<T | undefined> {
  const progress = progressListener(opts);
  try {
    const result = await fn(progress.listener);
    progress.stop();
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...result, peakRssBytes: peakRssBytes() }, null, 2)}\n`);
    else if (!opts.quiet) process.stdout.write(`${summary(result)}\n`);
    return result;
  } catch (err) {
    progress.stop();
    process.exitCode = printError(err, opts.debug);
    return undefined;
  }
}
