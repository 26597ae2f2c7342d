#!/usr/bin/env node
/**
 * Issue 17's performance targets, measured: a thin wrapper around the `daemon` section of
 * `scriptorium bench` (src/bench/daemon.ts), for a run with other windows than the bench's.
 * `npm run build && node dist/cli/main.js bench --only daemon` writes the same figures as a report.
 *
 *   npm run build && node bench/daemon-measure.mjs [--idle-seconds 20] [--soak-seconds 60] [--requests 50]
 */
import { daemonMarkdown, runDaemonBench } from '../dist/bench/daemon.js';

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const report = await runDaemonBench({ idleSeconds: arg('--idle-seconds'), soakSeconds: arg('--soak-seconds'), requests: arg('--requests') });
console.log(daemonMarkdown(report));
